package engine

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// The SV2 listener's certificate (see doc.go, "Stratum V2"). A miner
// refuses a certificate outside its validity window, so a server that kept
// serving one past its end would lock out every new SV2 connection while
// looking healthy. The server checks the window at start and every second
// (sv2Run): with a renewal function (SetSV2Renewal) it signs a new
// certificate once three quarters of the window have passed, or at once
// when the certificate is outside it; without one it logs a warning at that
// point and an error when the certificate has ended. Established
// connections never look at the certificate again; only new handshakes use
// the new responder.

// SV2Renewal returns a new Noise responder for the SV2 listener: a static
// key and a certificate signed by the pool's authority key (the key miners
// pin), valid at now. It is called off the event loops, at most once a
// minute.
type SV2Renewal func(now time.Time) (*noise.Responder, error)

// sv2RetrySecs is the pause after a failed renewal (or one whose
// certificate does not end later).
const sv2RetrySecs = 60

// sv2Cert is the certificate state; resp and renew are read on the event
// loops and in sv2Run, the rest only in sv2Run.
type sv2Cert struct {
	resp    atomic.Pointer[noise.Responder] // nil: Options.SV2Responder
	renew   atomic.Pointer[SV2Renewal]
	nextTry int64
	logged  uint8 // sv2CertDue or sv2CertEnded once logged for the responder in use
}

const (
	sv2CertDue uint8 = 1 + iota
	sv2CertEnded
)

// SetSV2Renewal makes the server renew its SV2 certificate before it ends
// (see SV2Renewal); call it before Serve. Without it the server only logs
// that the certificate is due or has ended.
func (s *Server) SetSV2Renewal(renew SV2Renewal) {
	if renew == nil {
		s.sv2.cert.renew.Store(nil)
		return
	}
	s.sv2.cert.renew.Store(&renew)
}

// sv2Responder is the responder new handshakes use.
func (s *Server) sv2Responder() *noise.Responder {
	if r := s.sv2.cert.resp.Load(); r != nil {
		return r
	}
	return s.opts.SV2Responder
}

// SV2Certificate returns the certificate new SV2 handshakes are answered
// with (the zero Certificate without Options.SV2Responder).
func (s *Server) SV2Certificate() noise.Certificate {
	if r := s.sv2Responder(); r != nil {
		return r.Certificate()
	}
	return noise.Certificate{}
}

// sv2CertProblem reports whether now (unix seconds) lies outside the
// certificate's validity window; the error wraps noise.ErrCertExpired or
// noise.ErrCertNotYetValid and says what to do.
func sv2CertProblem(c noise.Certificate, now int64) error {
	switch {
	case now > int64(c.NotValidAfter):
		return fmt.Errorf("sv2 certificate ended at %s (%w): miners refuse it; sign a new one (sserver signs one at every start, valid for sv2_cert_validity_days)",
			time.Unix(int64(c.NotValidAfter), 0).UTC().Format(time.RFC3339), noise.ErrCertExpired)
	case now < int64(c.ValidFrom):
		return fmt.Errorf("sv2 certificate is valid only from %s (%w): miners refuse it; check the clock",
			time.Unix(int64(c.ValidFrom), 0).UTC().Format(time.RFC3339), noise.ErrCertNotYetValid)
	}
	return nil
}

// sv2RenewAt is when a certificate is renewed: three quarters into its
// window, so that miners whose clocks run ahead and a failed renewal (retried
// every minute) both have a quarter of the window to spare.
func sv2RenewAt(c noise.Certificate) int64 {
	from, until := int64(c.ValidFrom), int64(c.NotValidAfter)
	if until < from {
		return from
	}
	return from + (until-from)*3/4
}

// sv2CheckCert renews the certificate when it is due (sv2Run's goroutine,
// at start and every tick).
func (s *Server) sv2CheckCert(now time.Time) {
	cs := &s.sv2.cert
	r := s.sv2Responder()
	if r == nil {
		return
	}
	c, t := r.Certificate(), now.Unix()
	problem := sv2CertProblem(c, t)
	if problem == nil && t < sv2RenewAt(c) {
		return
	}
	renew := cs.renew.Load()
	if renew == nil {
		until := time.Unix(int64(c.NotValidAfter), 0).UTC()
		switch {
		case problem != nil && cs.logged < sv2CertEnded:
			cs.logged = sv2CertEnded
			s.log.Error("sv2 certificate unusable: new SV2 connections fail until sserver restarts", "err", problem)
		case problem == nil && cs.logged < sv2CertDue:
			cs.logged = sv2CertDue
			s.log.Warn("sv2 certificate ends soon and nothing renews it: restart sserver before then to sign a new one",
				"not_valid_after", until)
		}
		return
	}
	if t < cs.nextTry {
		return
	}
	nr, err := (*renew)(now)
	if err == nil && nr == nil {
		err = fmt.Errorf("the renewal returned no responder")
	}
	if err == nil {
		nc := nr.Certificate()
		if err = sv2CertProblem(nc, t); err == nil && nc.NotValidAfter <= c.NotValidAfter && problem == nil {
			err = fmt.Errorf("the new certificate ends at %s, no later than the one in use", time.Unix(int64(nc.NotValidAfter), 0).UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		cs.nextTry = t + sv2RetrySecs
		s.log.Error("sv2 certificate renewal failed; retrying in a minute, the certificate in use stays", "err", err,
			"not_valid_after", time.Unix(int64(c.NotValidAfter), 0).UTC())
		return
	}
	cs.resp.Store(nr)
	cs.logged, cs.nextTry = 0, 0
	nc := nr.Certificate()
	s.log.Info("sv2 certificate renewed", "valid_from", time.Unix(int64(nc.ValidFrom), 0).UTC(),
		"not_valid_after", time.Unix(int64(nc.NotValidAfter), 0).UTC(), "renew_at", time.Unix(sv2RenewAt(nc), 0).UTC())
}
