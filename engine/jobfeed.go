package engine

import (
	"context"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// AddJob inserts a job (the job consumer calls it; tests may too) and
// broadcasts it when btcpool's rules say so.
func (s *Server) AddJob(p *JobParams) error {
	now := time.Now().Unix()
	j, send, err := s.repo.Add(p, now)
	if err != nil {
		return err
	}
	if send {
		s.broadcast(j, j.Clean)
		s.sv2Broadcast(j)
	}
	return nil
}

// consumeJobs reads the job topic until ctx ends. Transient bus errors are
// ridden out (one log line per incident); a permanent one stops the
// consumer and is returned, which stops the server.
func (s *Server) consumeJobs(ctx context.Context, cons bus.Consumer) error {
	var sj btcpool.StratumJob
	inc := bus.Incident{Log: s.log, What: "sserver: polling " + s.opts.Topics.Job}
	for ctx.Err() == nil {
		msgs, err := bus.Poll(ctx, cons, &inc)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, m := range msgs {
			if err := btcpool.DecodeStratumJob(m.Value, &sj); err != nil {
				s.log.Warn("bad stratum job", "err", err)
				continue
			}
			p, err := jobParamsFrom(&sj)
			if err != nil {
				s.log.Warn("bad stratum job", "id", sj.JobID, "err", err)
				continue
			}
			if s.opts.Topics.AuxSolvedShare != "" {
				if p.Aux, err = auxChainsFrom(m.Value, &sj); err != nil {
					s.log.Warn("stratum job's aux chains ignored", "id", sj.JobID, "err", err)
				}
				p.MergedMiningClean = sj.MergedMiningClean
			}
			if s.opts.Topics.RskSolvedShare != "" {
				s.addRSK(p, &sj)
			}
			if err := s.AddJob(p); err != nil {
				s.log.Warn("job dropped", "id", sj.JobID, "height", sj.Height, "err", err)
			}
		}
	}
	return nil
}

// jobParamsFrom converts a decoded BtcJob message.
func jobParamsFrom(sj *btcpool.StratumJob) (*JobParams, error) {
	prev, err := sj.PrevHashBytes()
	if err != nil {
		return nil, err
	}
	cb1, err := sj.Coinbase1Bytes()
	if err != nil {
		return nil, err
	}
	cb2, err := sj.Coinbase2Bytes()
	if err != nil {
		return nil, err
	}
	branch, err := sj.Branch()
	if err != nil {
		return nil, err
	}
	p := &JobParams{ID: sj.JobID, Height: sj.Height, PrevHash: prev, Coinbase1: cb1, Coinbase2: cb2, Branch: branch,
		Version: uint32(sj.NVersion), Bits: sj.NBits, Time: sj.NTime, MinTime: sj.MinTime}
	if sj.ProxyJobDifficulty > 0 {
		p.NetworkTarget = sha.DiffToTarget(float64(sj.ProxyJobDifficulty))
	}
	return p, nil
}
