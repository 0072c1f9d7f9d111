package mem_test

import (
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/bustest"
	"github.com/hashpool/hashpool/bus/mem"
)

func newEnv(t testing.TB) bustest.Env {
	b := mem.New(mem.Options{})
	return bustest.Env{
		Bus:             b,
		Topics:          bus.DefaultTopics(),
		Break:           func() { b.Close() },
		DeliveryTimeout: time.Second,
	}
}

func TestConformance(t *testing.T) { bustest.Run(t, newEnv) }

func BenchmarkPublish(b *testing.B) { bustest.BenchPublish(b, newEnv, 0) }

func BenchmarkLatency(b *testing.B) { bustest.BenchLatency(b, newEnv) }
