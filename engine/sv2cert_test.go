package engine

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
)

func TestSV2CertProblem(t *testing.T) {
	now := time.Now().Unix()
	c := noise.Certificate{ValidFrom: uint32(now - 100), NotValidAfter: uint32(now + 300)}
	for _, tc := range []struct {
		at   int64
		want error
	}{
		{now, nil},
		{now - 100, nil},
		{now + 300, nil},
		{now + 301, noise.ErrCertExpired},
		{now - 101, noise.ErrCertNotYetValid},
	} {
		if err := sv2CertProblem(c, tc.at); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("at %+d: %v, want %v", tc.at-now, err, tc.want)
		}
	}
	if got := sv2RenewAt(c); got != now+200 {
		t.Errorf("renew at %+d, want +200 (three quarters into the window)", got-now)
	}
}

// TestSV2CertRenewal drives sv2CheckCert with chosen times: nothing before
// three quarters of the window, a renewal then; a failed renewal keeps the
// certificate in use and is retried a minute later; a renewal that does
// not end later is refused; a certificate already ended is renewed at once.
func TestSV2CertRenewal(t *testing.T) {
	k := newSV2Keys(t)
	o := testOptions(t)
	start := time.Now()
	o.SV2Responder = k.responder(t, start, start.Add(400*time.Second))
	off := newOffline(t, o)
	srv := off.srv
	first := srv.SV2Certificate()

	var calls atomic.Int32
	var fail bool
	var next *noise.Responder
	srv.SetSV2Renewal(func(now time.Time) (*noise.Responder, error) {
		calls.Add(1)
		if fail {
			return nil, errors.New("authority key unreadable")
		}
		return next, nil
	})
	at := func(d int) time.Time { return start.Add(time.Duration(d) * time.Second) }

	srv.sv2CheckCert(at(299))
	if calls.Load() != 0 {
		t.Fatal("renewed before three quarters of the window")
	}
	fail = true
	srv.sv2CheckCert(at(300))
	srv.sv2CheckCert(at(301))
	if calls.Load() != 1 || srv.SV2Certificate() != first {
		t.Fatalf("%d renewal calls, certificate changed %v", calls.Load(), srv.SV2Certificate() != first)
	}
	fail = false
	next = k.responder(t, start, start.Add(400*time.Second)) // no later than the one in use
	srv.sv2CheckCert(at(300 + sv2RetrySecs))
	if calls.Load() != 2 || srv.SV2Certificate() != first {
		t.Fatalf("%d renewal calls; a certificate ending no later was taken: %v", calls.Load(), srv.SV2Certificate() != first)
	}
	next = k.responder(t, at(300), at(1300))
	srv.sv2CheckCert(at(300 + 2*sv2RetrySecs))
	if got := srv.SV2Certificate(); calls.Load() != 3 || got.NotValidAfter != uint32(at(1300).Unix()) {
		t.Fatalf("%d renewal calls, certificate until %d", calls.Load(), got.NotValidAfter)
	}
	if srv.sv2Responder() != next {
		t.Fatal("new handshakes do not use the new responder")
	}

	// Ended (the clock jumped): renewed at once, whatever the retry pause.
	next = k.responder(t, at(1000), at(9000))
	srv.sv2CheckCert(at(1301))
	if got := srv.SV2Certificate(); calls.Load() != 4 || got.NotValidAfter != uint32(at(9000).Unix()) {
		t.Fatalf("%d renewal calls, certificate until %d", calls.Load(), got.NotValidAfter)
	}

	// Without a renewal: one warning when due, one error when ended.
	srv.SetSV2Renewal(nil)
	srv.sv2CheckCert(at(8000))
	if srv.sv2.cert.logged != sv2CertDue {
		t.Fatalf("logged state %d, want due", srv.sv2.cert.logged)
	}
	srv.sv2CheckCert(at(9001))
	if srv.sv2.cert.logged != sv2CertEnded || calls.Load() != 4 {
		t.Fatalf("logged state %d, %d calls", srv.sv2.cert.logged, calls.Load())
	}
}

// handshakeCert runs a handshake against the server and returns the
// certificate it sent, or the initiator's error.
func handshakeCert(t *testing.T, p *testPool, authority [32]byte) (noise.Certificate, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.srv.SV2Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ini, err := noise.NewInitiator(authority, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	act1, _ := ini.WriteAct1(nil)
	if _, err := c.Write(act1); err != nil {
		t.Fatal(err)
	}
	act2 := make([]byte, noise.Act2Len)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, act2); err != nil {
		t.Fatal(err)
	}
	if _, err := ini.ReadAct2(act2, time.Now()); err != nil {
		return noise.Certificate{}, err
	}
	return ini.Cert, nil
}

// TestSV2CertificateRotation: a server started with a certificate that has
// ended (or is not valid yet) is refused by every SV2 miner, while SV1
// miners are not affected; with a renewal the certificate is replaced
// within a tick, new handshakes get the new one and a miner connected
// before keeps mining.
func TestSV2CertificateRotation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		from, until time.Duration
		want        error
	}{
		{"ended", -48 * time.Hour, -24 * time.Hour, noise.ErrCertExpired},
		{"not yet valid", time.Hour, 24 * time.Hour, noise.ErrCertNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newSV2Keys(t)
			o := sv2Options(t, k)
			o.SV2Responder = k.responder(t, time.Now().Add(tc.from), time.Now().Add(tc.until))
			p := startSV2Pool(t, o)
			job := testJobParams(410, false)
			if err := p.srv.AddJob(job); err != nil {
				t.Fatal(err)
			}
			if _, err := handshakeCert(t, p, k.pub); !errors.Is(err, tc.want) {
				t.Fatalf("handshake: %v, want %v", err, tc.want)
			}
			v1 := p.dial()
			v1.subscribeAuthorize("cpuminer/2.5.1", "alice.v1")

			until := time.Now().Add(30 * 24 * time.Hour)
			p.srv.SetSV2Renewal(func(now time.Time) (*noise.Responder, error) {
				return k.responder(t, now.Add(-time.Hour), until), nil
			})
			waitFor(t, "the certificate to be renewed", func() bool {
				return p.srv.SV2Certificate().NotValidAfter == uint32(until.Unix())
			})
			c, err := handshakeCert(t, p, k.pub)
			if err != nil || c.NotValidAfter != uint32(until.Unix()) {
				t.Fatalf("after the renewal: %+v %v", c, err)
			}
			by := newSV2Bystanders(t, p, k, job)

			// A second renewal: the miner connected before keeps mining.
			until2 := time.Now().Add(60 * 24 * time.Hour)
			p.srv.sv2.cert.resp.Store(k.responder(t, time.Now().Add(-100*time.Hour), time.Now().Add(time.Hour))) // due
			p.srv.SetSV2Renewal(func(now time.Time) (*noise.Responder, error) {
				return k.responder(t, now.Add(-time.Hour), until2), nil
			})
			waitFor(t, "the second renewal", func() bool {
				return p.srv.SV2Certificate().NotValidAfter == uint32(until2.Unix())
			})
			by.check()
		})
	}
}
