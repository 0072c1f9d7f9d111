package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hashpool/hashpool/blockmaker"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/engine/userlist"
	"github.com/hashpool/hashpool/jobs/auxmaker"
	"github.com/hashpool/hashpool/jobs/gbtmaker"
	"github.com/hashpool/hashpool/jobs/jobmaker"
	"github.com/hashpool/hashpool/jobs/rskmaker"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sharelog/slparser"
	"github.com/hashpool/hashpool/sharelog/statshttpd"
	"github.com/hashpool/hashpool/store"
	"github.com/hashpool/hashpool/tlsfront"
)

// pool holds what the components of one process share: the bus, the database, the registry.
type pool struct {
	cfg *Config
	log *slog.Logger
	bus bus.Bus
	db  *store.Store
	reg *prometheus.Registry

	mu    sync.Mutex
	tasks []task
}

// task is one long-running part of the process.
type task struct {
	name  string
	run   func(ctx context.Context) error
	drain func() // if set, asks run to finish what was published and return (instead of a cancel)
}

// Shutdown order. A stage is stopped only after every task of the stages before it returned:
// the stratum server stops accepting and drains first, so no share arrives after the makers
// stop; the makers next; then blkmaker and sharelogger finish what was published (every solved
// share submitted and recorded, every share record written); statistics and metrics last.
const (
	stageFront = iota
	stageMakers
	stageBooks
	stageStats
	numStages
)

// stageOf places a task in the shutdown order by its name.
func stageOf(name string) int {
	switch name {
	case "sserver", "status", "tlsfront":
		return stageFront
	case "gbtmaker", "jobmaker", "userlist", "auxmaker", "rskmaker":
		return stageMakers
	case "blkmaker", "sharelogger":
		return stageBooks
	}
	return stageStats
}

// stageGrace bounds how long a stage may take to stop before its tasks are cancelled; the
// stratum server's own drain is bounded by shutdown_grace_period inside it.
var stageGrace = [numStages]time.Duration{stageFront: 2 * time.Minute, stageMakers: 30 * time.Second,
	stageBooks: 2 * time.Minute, stageStats: 30 * time.Second}

// newPool opens the bus and (with needDB) the database. createTopics lets `hashpool run -kafka`
// create btcpool's topics (with a message size large enough for main-net templates); separate
// components expect them to exist (docs/OPERATIONS.md).
func newPool(ctx context.Context, cfg *Config, log *slog.Logger, needDB, createTopics bool) (*pool, error) {
	p := &pool{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if len(cfg.Kafka.Brokers) > 0 {
		b, err := kafka.New(kafka.Config{Brokers: cfg.Kafka.Brokers, Topics: cfg.topics(), CreateTopics: createTopics,
			SessionTimeout: secs(cfg.Kafka.SessionTimeout), DeliveryTimeout: secs(cfg.Kafka.DeliveryTimeout),
			ClientID: cfg.Kafka.ClientID})
		if err != nil {
			return nil, fmt.Errorf("kafka %v: %w", cfg.Kafka.Brokers, err)
		}
		p.bus = b
	} else {
		// The in-process bus is durable on disk, like Kafka: an acknowledged record (a solved
		// share, the template and job it came from, a share record) survives a crash, and
		// blkmaker and sharelogger resume from their committed offsets after a restart.
		b, err := mem.Open(mem.Options{Dir: filepath.Join(cfg.DataDir, "bus"), Topics: mem.PoolRetention(cfg.topics()),
			Logger: log.With("component", "bus")})
		if err != nil {
			return nil, fmt.Errorf("in-process bus: %w", err)
		}
		p.bus = b
		registerBusMetrics(p.reg, b)
	}
	if needDB {
		db, err := store.Open(ctx, cfg.dsn())
		if err != nil {
			p.bus.Close()
			return nil, fmt.Errorf("database: %w", err)
		}
		p.db = db
	}
	return p, nil
}

func (p *pool) close() {
	if p.db != nil {
		p.db.Close()
	}
	if err := p.bus.Close(); err != nil {
		p.log.Error("closing the bus", "err", err)
	}
}

func (p *pool) add(name string, run func(ctx context.Context) error) {
	p.addDrainable(name, run, nil)
}

// addDrainable adds a task that stops by draining: at shutdown drain is called and run must
// return once it has handled everything published before (its ctx is cancelled only if it
// overruns its stage's grace).
func (p *pool) addDrainable(name string, run func(ctx context.Context) error, drain func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tasks = append(p.tasks, task{name, run, drain})
}

// run starts every task and waits. When ctx ends (SIGINT/SIGTERM) or a task fails, the tasks
// are stopped stage by stage in the shutdown order (a drainable task is asked to drain, any
// other is cancelled); run returns the first failure.
func (p *pool) run(ctx context.Context) error {
	type result struct {
		i   int
		err error
	}
	cancels := make([]context.CancelFunc, len(p.tasks))
	done := make(chan result, len(p.tasks))
	running := make([]map[int]bool, numStages)
	for i := range running {
		running[i] = map[int]bool{}
	}
	for i, t := range p.tasks {
		tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i] = cancel
		defer cancel()
		running[stageOf(t.name)][i] = true
		go func() { done <- result{i, t.run(tctx)} }()
	}
	left := len(p.tasks)
	var first error
	finished := func(r result) {
		left--
		name := p.tasks[r.i].name
		delete(running[stageOf(name)], r.i)
		if r.err != nil && !errors.Is(r.err, context.Canceled) && first == nil {
			first = fmt.Errorf("%s: %w", name, r.err)
			p.log.Error("component failed; stopping the others in order", "component", name, "err", r.err)
		}
	}
	// Run until the process is told to stop or a component fails.
	for first == nil && left > 0 && ctx.Err() == nil {
		select {
		case r := <-done:
			finished(r)
			if first == nil && r.err == nil && ctx.Err() == nil {
				p.log.Warn("component returned early", "component", p.tasks[r.i].name)
			}
		case <-ctx.Done():
		}
	}
	for st := range numStages {
		if len(running[st]) == 0 {
			continue
		}
		for i := range running[st] {
			if d := p.tasks[i].drain; d != nil {
				d()
			} else {
				cancels[i]()
			}
		}
		g := stageGrace[st]
		if st == stageBooks && p.cfg.BlkMaker.DrainTimeout > 0 {
			g = secs(p.cfg.BlkMaker.DrainTimeout)
		}
		grace := time.NewTimer(g)
		for len(running[st]) > 0 {
			select {
			case r := <-done:
				finished(r)
			case <-grace.C:
				var names []string
				for i := range running[st] {
					names = append(names, p.tasks[i].name)
					cancels[i]()
				}
				p.log.Warn("components did not stop in time; cancelling them", "components", fmt.Sprint(names), "grace", g)
			}
		}
		grace.Stop()
	}
	return first
}

func dirExists(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}

// producer is a low-latency producer for templates, jobs and solved shares.
func (p *pool) producer() (bus.Producer, error) { return p.bus.NewProducer(bus.ProducerOptions{}) }

// checkNode says clearly when the node cannot be reached, before anything else starts.
func checkNode(ctx context.Context, o node.Options) (int64, error) {
	c, err := node.NewClient(o)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h, err := c.GetBlockCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the node at %s: %w (check -node, -node-auth / -node-cookie, and that the node runs)", o.URL, err)
	}
	return h, nil
}

func (p *pool) addGbtMaker() error {
	prod, err := p.producer()
	if err != nil {
		return err
	}
	o := p.cfg.gbtmakerOptions()
	o.Logger = p.log.With("component", "gbtmaker")
	m, err := gbtmaker.New(o, prod)
	if err != nil {
		prod.Close()
		return err
	}
	p.add("gbtmaker", func(ctx context.Context) error { defer prod.Close(); return m.Run(ctx) })
	return nil
}

// addAuxMakers adds one auxmaker per [[aux]] chain (task "auxmaker", stopped with the makers).
func (p *pool) addAuxMakers() error {
	for _, a := range p.cfg.Aux {
		prod, err := p.producer()
		if err != nil {
			return err
		}
		o := p.cfg.auxmakerOptions(a)
		o.Logger = p.log.With("component", "auxmaker", "chain", a.ChainName)
		m, err := auxmaker.New(o, prod)
		if err != nil {
			prod.Close()
			return fmt.Errorf("aux %q: %w", a.ChainName, err)
		}
		p.add("auxmaker", func(ctx context.Context) error { defer prod.Close(); return m.Run(ctx) })
	}
	return nil
}

// addRSKMaker adds the RSK gwmaker when [rsk] is configured (task "rskmaker", stopped with
// the makers).
func (p *pool) addRSKMaker() error {
	if !p.cfg.RSK.on() {
		return nil
	}
	prod, err := p.producer()
	if err != nil {
		return err
	}
	o := p.cfg.rskmakerOptions()
	o.Logger = p.log.With("component", "rskmaker")
	m, err := rskmaker.New(o, prod)
	if err != nil {
		prod.Close()
		return fmt.Errorf("rsk: %w", err)
	}
	p.add("rskmaker", func(ctx context.Context) error { defer prod.Close(); return m.Run(ctx) })
	return nil
}

func (p *pool) addJobMaker() error {
	o := p.cfg.jobmakerOptions()
	o.Logger = p.log.With("component", "jobmaker")
	jm, err := jobmaker.New(p.bus, o)
	if err != nil {
		return err
	}
	p.add("jobmaker", jm.Run)
	return nil
}

// addSServer starts the stratum server and returns it (for the run command's progress line).
func (p *pool) addSServer() (*engine.Server, error) {
	o, err := p.cfg.engineOptions()
	if err != nil {
		return nil, err
	}
	tlsOpts, err := p.cfg.tlsFrontOptions(&o)
	if err != nil {
		return nil, err
	}
	log := p.log.With("component", "sserver")
	var users engine.Users
	closeUsers := func() {}
	if p.cfg.Users.ListIDAPIURL != "" {
		api := userlist.NewAPI(p.cfg.Users.ListIDAPIURL, o.Names.Normalize, log)
		p.add("userlist", func(ctx context.Context) error { api.Run(ctx); return nil })
		users = api
	} else {
		emb, err := userlist.OpenEmbedded(filepath.Join(p.cfg.DataDir, "users"), log)
		if err != nil {
			return nil, err
		}
		users = emb
		closeUsers = func() {
			if err := emb.Close(); err != nil {
				log.Error("closing the user list", "err", err)
			}
		}
	}
	prod, err := p.bus.NewProducer(bus.ProducerOptions{Linger: 100 * time.Millisecond, MaxBufferedRecords: 100000})
	if err != nil {
		return nil, err
	}
	srv, err := engine.New(o, engine.Deps{Producer: prod, Bus: p.bus, Users: users, Log: log})
	if err != nil {
		prod.Close()
		return nil, err
	}
	registerEngineMetrics(p.reg, srv.Metrics())
	if o.SV2Listen != "" {
		// A new certificate, signed with the same authority key, before the current one ends
		// (engine/sv2cert.go): miners pin the authority, so they accept it.
		cfg, dir := p.cfg, o.DataDir
		srv.SetSV2Renewal(func(now time.Time) (*noise.Responder, error) {
			r, _, err := cfg.sv2Responder(dir, now)
			return r, err
		})
	}
	if tlsOpts != nil {
		p.add("tlsfront", func(ctx context.Context) error {
			select {
			case <-srv.Ready():
			case <-ctx.Done():
				return nil
			}
			f, err := tlsfront.New(*tlsOpts, p.log.With("component", "tlsfront"))
			if err != nil {
				return err
			}
			p.log.Info("stratum+ssl listening", "addr", tlsOpts.Listen, "backend", tlsOpts.Backend)
			return f.Serve(ctx)
		})
	}
	p.add("sserver", func(ctx context.Context) error {
		if o.SV2Listen != "" {
			go func() {
				select {
				case <-srv.Ready():
					log.Info("stratum v2 listening", "addr", srv.SV2Addr(), "authority_key", p.cfg.sv2Authority,
						"authority_key_file", p.cfg.sv2AuthorityFile(o.DataDir))
				case <-ctx.Done():
				}
			}()
		}
		// Cancelling ctx makes Serve stop accepting, drain the sessions, flush the share
		// records and wait for the solved shares to be acknowledged; then the producer flushes.
		defer closeUsers()
		defer prod.Close()
		return srv.Serve(ctx)
	})
	return srv, nil
}

func (p *pool) addBlkMaker(onBlock func(blockmaker.Result)) (*blockmaker.Maker, error) {
	o := p.cfg.blkmakerOptions()
	o.Logger = p.log.With("component", "blkmaker")
	o.OnBlock = onBlock
	auxc := new(blockmaker.AuxCounters)
	for _, c := range auxc.All() {
		v := c.V
		p.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hashpool_blkmaker_" + c.Name, Help: c.Help},
			func() float64 { return float64(v.Load()) }))
	}
	o.OnAuxBlock = func(r blockmaker.AuxResult) {
		auxc.Count(r)
		if r.Err == nil {
			o.Logger.Info("aux block found", "chain", r.Block.ChainName, "aux_hash", r.Block.AuxBlockHash,
				"parent_hash", r.Block.BitcoinBlockHash, "accepted", r.Accepted, "response", r.Block.SubmitResponse)
		}
	}
	o.OnRSKBlock = func(r blockmaker.RSKResult) {
		if r.Err == nil {
			o.Logger.Info("RSK block found", "rsk_hash", r.Block.RSKBlockHash, "parent_hash", r.Block.BitcoinBlockHash,
				"accepted", r.Accepted, "response", r.Block.SubmitResponse)
		}
	}
	var rec blockmaker.Recorder
	if p.db != nil {
		rec = p.db
	}
	m, err := blockmaker.New(o, p.bus, rec)
	if err != nil {
		return nil, err
	}
	p.addDrainable("blkmaker", m.Run, m.Drain)
	return m, nil
}

// addStatsHTTPD adds statshttpd with its HTTP API and the dashboard; srv is the engine when it
// runs in this process (nil in split mode).
func (p *pool) addStatsHTTPD(srv *engine.Server) (*statshttpd.Server, error) {
	o := p.cfg.statshttpdOptions()
	o.Logger = p.log.With("component", "statshttpd")
	// The windows of the last hour are rebuilt from the share log at start when it is on this
	// machine (always in `hashpool run`); topic records the files hold are not counted again.
	if dir := p.cfg.shareLogDir(); dirExists(dir) || srv != nil {
		o.ShareLogDir = dir
	}
	o.DurableOffsets = true
	s, err := statshttpd.New(o, p.bus, p.db)
	if err != nil {
		return nil, err
	}
	p.addDrainable("statshttpd", s.Run, s.Drain)
	if err := p.addStatsHTTP(s, srv); err != nil {
		return nil, err
	}
	return s, nil
}

func (p *pool) addSLParser() (*slparser.Parser, error) {
	open, suffix := shareLogOpener(p.cfg.ShareLog.Compression)
	o := p.cfg.slparserOptions(open, suffix)
	o.Logger = p.log.With("component", "slparser")
	var db slparser.StatsStore
	if p.db != nil {
		db = p.db
	}
	sp, err := slparser.New(o, db)
	if err != nil {
		return nil, err
	}
	p.add("slparser", sp.Run)
	return sp, nil
}

// addMetrics serves the Prometheus registry when enabled.
func (p *pool) addMetrics() {
	m := p.cfg.Metrics
	if !m.Enabled || m.Port <= 0 {
		return
	}
	addr := fmt.Sprintf("%s:%d", m.Address, m.Port)
	mux := http.NewServeMux()
	mux.Handle(m.Path, promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
	p.add("metrics", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		p.log.Info("metrics listening", "addr", "http://"+addr+m.Path)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics listen %s: %w", addr, err)
		}
		return nil
	})
}

// registerEngineMetrics exports every engine counter and gauge (engine.Metrics.All lists them
// all, so none can be left out) as hashpool_sserver_<name>.
func registerEngineMetrics(reg *prometheus.Registry, m *engine.Metrics) {
	type family struct {
		desc    *prometheus.Desc
		kind    prometheus.ValueType
		metrics []engine.Metric
	}
	var fams []*family
	byName := map[string]*family{}
	for _, mt := range m.All() {
		f := byName[mt.Name]
		if f == nil {
			var labels []string
			if mt.Label != "" {
				labels = []string{mt.Label}
			}
			kind := prometheus.GaugeValue
			if mt.Kind == engine.Counter {
				kind = prometheus.CounterValue
			}
			f = &family{desc: prometheus.NewDesc("hashpool_sserver_"+mt.Name, mt.Help, labels, nil), kind: kind}
			byName[mt.Name] = f
			fams = append(fams, f)
		}
		f.metrics = append(f.metrics, mt)
	}
	descs := make([]*prometheus.Desc, 0, len(fams))
	for _, f := range fams {
		descs = append(descs, f.desc)
	}
	reg.MustRegister(collectorFunc{desc: descs[0], others: descs[1:], collect: func(ch chan<- prometheus.Metric) {
		for _, f := range fams {
			for _, mt := range f.metrics {
				if mt.Label != "" {
					ch <- prometheus.MustNewConstMetric(f.desc, f.kind, mt.Value(), mt.LabelValue)
				} else {
					ch <- prometheus.MustNewConstMetric(f.desc, f.kind, mt.Value())
				}
			}
		}
	}})
}

// collectorFunc is a prometheus.Collector reading values when scraped.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
	others  []*prometheus.Desc // further metrics the same collect writes
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	for _, d := range c.others {
		ch <- d
	}
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
