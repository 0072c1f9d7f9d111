package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashpool/hashpool/dashboard"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sharelog/slparser"
	"github.com/hashpool/hashpool/sharelog/statshttpd"
)

// DashboardConfig is the operator's web page on the statshttpd address (/dashboard/).
type DashboardConfig struct {
	Enabled    bool   `toml:"enabled" comment:"serve the live dashboard at http://<statshttpd ip:port>/dashboard/"`
	Token      string `toml:"token" comment:"if set, required: open /dashboard/?token=<token> once (or send Authorization: Bearer)"`
	BasicAuth  string `toml:"basic_auth" comment:"if set, 'user:password' for HTTP basic auth"`
	MaxClients int    `toml:"max_clients" comment:"live browser connections at most"`
}

func (c *Config) dashboardOptions() (dashboard.Options, error) {
	d := c.Dashboard
	o := dashboard.Options{Token: d.Token, MaxClients: d.MaxClients}
	if d.BasicAuth != "" {
		u, p, ok := strings.Cut(d.BasicAuth, ":")
		if !ok || u == "" || p == "" {
			return o, errors.New("dashboard.basic_auth: want 'user:password'")
		}
		o.BasicUser, o.BasicPassword = u, p
	}
	return o, nil
}

// nodeChain tells the dashboard how many confirmations a found block has.
type nodeChain struct{ c *node.Client }

func (n nodeChain) Confirmations(ctx context.Context, hash string) (int64, error) {
	var hdr struct {
		Confirmations int64 `json:"confirmations"`
	}
	if err := n.c.Call(ctx, "getblockheader", []any{hash, true}, &hdr); err != nil {
		return 0, err
	}
	return hdr.Confirmations, nil
}

// engineCounters are the engine numbers the dashboard shows inside `hashpool run`.
func engineCounters(m *engine.Metrics) func() []dashboard.Counter {
	return func() []dashboard.Counter {
		return []dashboard.Counter{
			{Name: "sessions", Value: float64(m.Sessions.Load())},
			{Name: "authorized", Value: float64(m.Authorized.Load())},
			{Name: "shares accepted", Value: float64(m.SharesAccepted.Load() + m.SharesSolved.Load())},
			{Name: "blocks solved", Value: float64(m.SharesSolved.Load())},
			{Name: "shares stale", Value: float64(m.SharesStale.Load())},
			{Name: "shares duplicate", Value: float64(m.SharesDuplicate.Load())},
			{Name: "shares low difficulty", Value: float64(m.SharesLowDiff.Load())},
			{Name: "shares other rejects", Value: float64(m.SharesOther.Load())},
		}
	}
}

// addStatsHTTP serves statshttpd's API and, when enabled, the dashboard on the statshttpd
// address. srv is the engine when it runs in this process (nil in split mode).
func (p *pool) addStatsHTTP(s *statshttpd.Server, srv *engine.Server) error {
	st := p.cfg.StatsHTTPD
	if st.Port <= 0 {
		return nil
	}
	addr := fmt.Sprintf("%s:%d", st.IP, st.Port)
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	if p.cfg.Dashboard.Enabled {
		o, err := p.cfg.dashboardOptions()
		if err != nil {
			return err
		}
		o.Bus, o.JobTopic = p.bus, p.cfg.Topics.Job
		o.Logger = p.log.With("component", "dashboard")
		interval := subsidyInterval(p.cfg.Network)
		o.Subsidy = func(h int32) int64 { return int64(slparser.Subsidy(uint32(max(h, 0)), interval)) }
		if srv != nil {
			o.Counters = engineCounters(srv.Metrics())
		}
		var chain dashboard.Chain
		if c, err := node.NewClient(p.cfg.Node.options()); err == nil {
			chain = nodeChain{c}
		}
		var blocks dashboard.Blocks
		if p.db != nil {
			blocks = p.db
		}
		d, err := dashboard.New(o, s.Stats(), blocks, chain)
		if err != nil {
			return err
		}
		mux.Handle(dashboard.Prefix, d.Handler())
		mux.Handle("/dashboard", http.RedirectHandler(dashboard.Prefix, http.StatusMovedPermanently))
		p.add("dashboard", d.Run)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	p.add("statshttpd-http", func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("statshttpd listen %s: %w", addr, err)
		}
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			_ = hs.Shutdown(sctx)
			_ = hs.Close() // event streams do not end on Shutdown
		}()
		p.log.Info("statshttpd listening", "addr", "http://"+addr+"/", "dashboard", p.cfg.Dashboard.Enabled)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}
