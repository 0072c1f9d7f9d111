package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashpool/hashpool/blockmaker"
	"github.com/hashpool/hashpool/sharelog/slparser"
	"github.com/hashpool/hashpool/store"
)

// cmdRun runs every component in one process.
func cmdRun(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.JobMaker.PayoutAddress == "" {
		return errors.New("no payout address: give -payout-address (an address of the -network chain) or jobmaker.payout_address")
	}
	applyMemoryLimit(cfg, log)
	height, err := checkNode(ctx, cfg.Node.options())
	if err != nil {
		return err
	}
	log.Info("node reachable", "url", cfg.Node.RPCAddr, "height", height, "network", cfg.Network)

	p, err := newPool(ctx, cfg, log, true, true)
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.addGbtMaker(); err != nil {
		return err
	}
	if err := p.addAuxMakers(); err != nil {
		return err
	}
	if err := p.addRSKMaker(); err != nil {
		return err
	}
	if err := p.addJobMaker(); err != nil {
		return err
	}
	srv, err := p.addSServer()
	if err != nil {
		return err
	}
	var blocks, accepted int64
	bm, err := p.addBlkMaker(func(r blockmaker.Result) {
		if r.Err == nil {
			log.Info("block found", "height", r.Block.Height, "hash", r.Block.Hash, "worker", r.Block.WorkerFullName, "on_tip", r.OnTip)
		}
	})
	if err != nil {
		return err
	}
	if err := p.addShareLogger(); err != nil {
		return err
	}
	if _, err := p.addStatsHTTPD(srv); err != nil {
		return err
	}
	if _, err := p.addSLParser(); err != nil {
		return err
	}
	p.addMetrics()
	p.addPprof()
	p.add("status", func(ctx context.Context) error {
		select {
		case <-srv.Ready():
			log.Info("stratum listening", "addr", srv.Addr().String(), "server_id", cfg.SServer.ID)
		case <-ctx.Done():
			return nil
		}
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				m := srv.Metrics()
				blocks, accepted = bm.Submitted(), bm.Accepted()
				log.Info("status", "sessions", m.Sessions.Load(), "accepted", m.SharesAccepted.Load(),
					"rejected", m.SharesStale.Load()+m.SharesDuplicate.Load()+m.SharesLowDiff.Load()+m.SharesOther.Load(),
					"blocks_submitted", blocks, "blocks_accepted", accepted)
			}
		}
	})
	log.Info("hashpool starting", "data_dir", cfg.DataDir, "db", store.RedactDSN(cfg.dsn()), "bus", busName(cfg))
	err = p.run(ctx)
	log.Info("hashpool stopped")
	return err
}

func busName(cfg *Config) string {
	if len(cfg.Kafka.Brokers) > 0 {
		return fmt.Sprintf("kafka %v", cfg.Kafka.Brokers)
	}
	return "in-process"
}

// requireKafka refuses to run a single component on the in-process bus: it would talk to nobody.
func requireKafka(cfg *Config, name string) error {
	if len(cfg.Kafka.Brokers) == 0 {
		return fmt.Errorf("%s alone needs Kafka: give -kafka host:port (or kafka.brokers); use `hashpool run` for a single process", name)
	}
	return nil
}

func cmdGbtMaker(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "gbtmaker"); err != nil {
		return err
	}
	if _, err := checkNode(ctx, cfg.Node.options()); err != nil {
		return err
	}
	p, err := newPool(ctx, cfg, log, false, false)
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.addGbtMaker(); err != nil {
		return err
	}
	if err := p.addRSKMaker(); err != nil { // the RSK gwmaker runs beside gbtmaker in split mode
		return err
	}
	return p.run(ctx)
}

// cmdAuxMaker runs one auxmaker per [[aux]] chain, btcpool's nmcauxmaker for split mode
// (`hashpool run` runs them inside). The jobmaker and blkmaker processes need the same [[aux]]
// tables: they turn merged mining on there too.
func cmdAuxMaker(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "auxmaker"); err != nil {
		return err
	}
	if len(cfg.Aux) == 0 {
		return errors.New("no aux chain: add one [[aux]] table per merged-mined chain (docs/CONFIG.md)")
	}
	p, err := newPool(ctx, cfg, log, false, false)
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.addAuxMakers(); err != nil {
		return err
	}
	return p.run(ctx)
}

func cmdJobMaker(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "jobmaker"); err != nil {
		return err
	}
	if cfg.JobMaker.PayoutAddress == "" {
		return errors.New("no payout address: give -payout-address or jobmaker.payout_address")
	}
	p, err := newPool(ctx, cfg, log, false, false)
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.addJobMaker(); err != nil {
		return err
	}
	return p.run(ctx)
}

func cmdSServer(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "sserver"); err != nil {
		return err
	}
	p, err := newPool(ctx, cfg, log, false, false)
	if err != nil {
		return err
	}
	defer p.close()
	if _, err := p.addSServer(); err != nil {
		return err
	}
	p.addMetrics()
	return p.run(ctx)
}

func cmdBlkMaker(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "blkmaker"); err != nil {
		return err
	}
	for _, n := range cfg.blkmakerOptions().Nodes {
		if _, err := checkNode(ctx, n); err != nil {
			log.Warn("node not reachable yet; blocks will be retried on it", "err", err)
		}
	}
	p, err := newPool(ctx, cfg, log, true, false)
	if err != nil {
		return err
	}
	defer p.close()
	if _, err := p.addBlkMaker(nil); err != nil {
		return err
	}
	return p.run(ctx)
}

func cmdStatsHTTPD(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "statshttpd"); err != nil {
		return err
	}
	p, err := newPool(ctx, cfg, log, true, false)
	if err != nil {
		return err
	}
	defer p.close()
	if _, err := p.addStatsHTTPD(nil); err != nil {
		return err
	}
	return p.run(ctx)
}

func cmdSLParser(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.SLParserOnce.Date != "" {
		return slparserOnce(ctx, cfg, log, stdout)
	}
	p, err := newPool(ctx, cfg, log, true, false)
	if err != nil {
		return err
	}
	defer p.close()
	if _, err := p.addSLParser(); err != nil {
		return err
	}
	return p.run(ctx)
}

func cmdShareLogger(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if err := requireKafka(cfg, "sharelogger"); err != nil {
		return err
	}
	p, err := newPool(ctx, cfg, log, false, false)
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.addShareLogger(); err != nil {
		return err
	}
	return p.run(ctx)
}

// slparserOnce re-parses one day's share log into the stats tables, or dumps its shares.
func slparserOnce(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	day, err := time.Parse("20060102", cfg.SLParserOnce.Date)
	if err != nil {
		return fmt.Errorf("-date %q: want YYYYMMDD", cfg.SLParserOnce.Date)
	}
	open, suffix := shareLogOpener(cfg.ShareLog.Compression)
	o := cfg.slparserOptions(open, suffix)
	path := slparser.FileName(o.DataDir, "BTC", suffix, day)
	if cfg.SLParserOnce.DumpUser >= 0 {
		puid := cfg.SLParserOnce.DumpUser
		if puid == 0 {
			puid = -1
		}
		n, err := slparser.Dump(stdout, path, nonFollowing(), puid)
		log.Info("dumped shares", "file", path, "shares", n)
		return err
	}
	d, err := slparser.ParseFile(path, day, nonFollowing(), o.SubsidyInterval, o.AcceptStale)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.dsn())
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	rows, err := d.Flush(ctx, db)
	if err != nil {
		return err
	}
	log.Info("day parsed into the stats tables", "file", path, "shares", d.Shares(), "ignored", d.Ignored(), "rows", rows)
	return nil
}
