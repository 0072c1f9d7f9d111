package statshttpd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/store"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServerConsumesFlushesAndServes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := mem.New(mem.Options{})
	defer b.Close()
	topics := bus.DefaultTopics()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	now := time.Now().Unix()
	// Shares already on the topic when the service starts are read back (btcpool's tail).
	for _, s := range []*btcpool.Share{
		share(7, 70, btcpool.StatusAccept, 1024, now-30),
		share(7, 70, btcpool.StatusAccept, 1024, now-20),
		share(7, 71, btcpool.StatusAccept, 2048, now-10),
		share(7, 71, btcpool.StatusLowDifficulty, 512, now-10),
	} {
		if err := prod.PublishSync(ctx, topics.Share, nil, btcpool.AppendShareMessage(nil, s)); err != nil {
			t.Fatal(err)
		}
	}
	ev := btcpool.CommonEvent{CreatedAt: time.Now(), Type: btcpool.EventTypeWorkerUpdate, Action: btcpool.ActionMinerConnect,
		UserID: 7, UserName: "alice", WorkerID: 70, WorkerName: "rig70", MinerAgent: "cgminer/4.10", IP: netip.MustParseAddr("10.0.0.7"),
		SessionID: 0x01000002, Desc: btcpool.DescNewConn}
	if err := prod.PublishSync(ctx, topics.CommonEvents, nil, btcpool.AppendCommonEvent(nil, &ev)); err != nil {
		t.Fatal(err)
	}

	srv, err := New(Options{Topics: topics, ListenAddr: "127.0.0.1:0", ExpectedOnlineWorkers: 10, FlushInterval: time.Second}, b, db)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	for srv.Addr() == nil || !srv.Ready() {
		if ctx.Err() != nil {
			t.Fatal("service never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := "http://" + srv.Addr().String()

	var root struct {
		ErrNo int `json:"err_no"`
		Data  struct {
			Uptime string `json:"uptime"`
			Pool   struct {
				Accept       []uint64          `json:"accept"`
				Reject       []uint64          `json:"reject"`
				RejectDetail []json.RawMessage `json:"reject_detail"`
				AcceptCount  int               `json:"accept_count"`
				Workers      int               `json:"workers"`
				Users        int               `json:"users"`
			} `json:"pool"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/")), &root); err != nil {
		t.Fatal(err)
	}
	p := root.Data.Pool
	if root.ErrNo != 0 || p.Accept[1] != 4096 || p.Reject[2] != 512 || p.AcceptCount != 3 || p.Workers != 2 || p.Users != 1 ||
		string(p.RejectDetail[2]) != `{"23":512}` || !strings.HasSuffix(root.Data.Uptime, " s") {
		t.Fatalf("root %+v", root)
	}

	body := get(t, base+"/worker_status?user_id=7&worker_id=70,0")
	if !strings.HasPrefix(body, `{"err_no":0,"err_msg":"","data":{"70":{"accept":[0,2048,2048,2048],"stale":[0,0,0,0],"reject":[0,0,0,0],"reject_detail":[{},{},{},{}],"accept_count":2,"last_share_ip":"10.0.0.7","last_share_time":`) ||
		!strings.Contains(body, `"0":{"accept":[0,4096,4096,4096],"stale":[0,0,0,0],"reject":[0,0,512,512],"reject_detail":[{},{},{"23":512},{"23":512}],"accept_count":3,`) ||
		!strings.Contains(body, `"workers":2}`) {
		t.Fatalf("worker_status %s", body)
	}
	merged := get(t, base+"/worker_status/?user_id=7&worker_id=70,71&is_merge=T")
	if !strings.Contains(merged, `"data":{"0":{"accept":[0,4096,4096,4096]`) {
		t.Fatalf("merged %s", merged)
	}
	if got := get(t, base+"/worker_status?user_id=7"); got != `{"err_no":1,"err_msg":"invalid args"}` {
		t.Fatalf("missing args: %s", got)
	}

	// The flush writes every worker and the user's aggregate; the event named the worker.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w, ok, err := db.MiningWorker(ctx, 7, 70)
		if err != nil {
			t.Fatal(err)
		}
		if ok && w.Accept15m == 2048 && w.WorkerName == "rig70" && w.MinerAgent == "cgminer/4.10" {
			if w.AcceptCount != 2 || w.LastShareIP != "10.0.0.7" || w.GroupID != -7 {
				t.Fatalf("row %+v", w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mining_workers row never complete: %+v ok=%v", w, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
	agg, ok, err := db.MiningWorker(ctx, 7, 0)
	if err != nil || !ok || agg.Reject15m != 512 || agg.RejectDetail15m != `{"23":512}` {
		t.Fatalf("aggregate row %+v ok=%v err=%v", agg, ok, err)
	}
	if !strings.Contains(get(t, base+"/flush_db_time"), `"flush_db_time":1`) {
		t.Fatal("flush_db_time not set")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestInitializingAnswer(t *testing.T) {
	srv, err := New(Options{}, mem.New(mem.Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptestRecorder(t, srv.Handler(), "/worker_status?user_id=1&worker_id=1")
	if rec != `{"err_no":2,"err_msg":"service is initializing..."}` {
		t.Fatalf("got %s", rec)
	}
}
