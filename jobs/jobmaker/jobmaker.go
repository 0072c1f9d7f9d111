package jobmaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// minPollTimeout keeps the timer loop from spinning when the next periodic
// job is due in less than this.
const minPollTimeout = 100 * time.Millisecond

// resendDelay is how soon a job the bus failed to deliver is published again.
const resendDelay = time.Second

// JobMaker consumes RawGbt messages and publishes StratumJob messages
// (btcpool's jobmaker, spec §3).
type JobMaker struct {
	opts    Options
	bus     bus.Bus
	m       *maker
	running atomic.Bool
	jobs    atomic.Int64
	lastJob atomic.Uint64 // id of the last job published
	// undelivered is the latest job when the bus failed to deliver it; Run publishes it
	// again (sservers drop a job id they already have) until it is delivered or a newer
	// job replaces it. btcpool only logged the failure, leaving miners on the previous
	// block until the next periodic job.
	undelivered atomic.Pointer[pendingJob]
	wake        chan struct{} // a delivery failed or aux work came: end Run's poll early
	auxIn       chan auxMsg   // aux and RSK work from the AuxRawGw and RskRawGw pollers, copied
}

// auxMsg is one AuxRawGw (or, rsk set, RskRawGw) record, copied off the bus.
type auxMsg struct {
	key, value []byte
	offset     int64
	rsk        bool
}

// auxQueue bounds the aux messages waiting for Run's loop; past it the poller waits (aux
// work is a few messages a minute per chain).
const auxQueue = 256

// auxTail is how many records before the end the AuxRawGw consumer starts: enough for the
// latest work of every chain sharing the topic (older or stale work is dropped on accept).
const auxTail = 64

// New returns a JobMaker on b. It fills the defaults of opts and reports
// every invalid option.
func New(b bus.Bus, opts Options) (*JobMaker, error) {
	if b == nil {
		return nil, errors.New("jobmaker: nil bus")
	}
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m, err := newMaker(opts)
	if err != nil {
		return nil, err
	}
	return &JobMaker{opts: opts, bus: b, m: m, wake: make(chan struct{}, 1), auxIn: make(chan auxMsg, auxQueue)}, nil
}

// resumeIDs reads the last job on the job topic, waiting at most
// ResumeWait, and makes every later job id greater than its id (see
// IDGenerator.Resume). Nothing read (an empty topic, a slow broker) leaves
// the ids to the clock; that is logged, never fatal.
func (jm *JobMaker) resumeIDs(ctx context.Context) {
	log := jm.opts.Logger
	cons, err := jm.bus.NewConsumer(jm.opts.JobTopic, bus.Start{Tail: 1})
	if err != nil {
		log.Warn("jobmaker: last job not read; job ids start from the clock", "topic", jm.opts.JobTopic, "err", err)
		return
	}
	defer cons.Close()
	wctx, cancel := context.WithTimeout(ctx, jm.opts.ResumeWait)
	defer cancel()
	msgs, err := cons.Poll(wctx)
	if err != nil || len(msgs) == 0 {
		log.Info("jobmaker: no earlier job read; job ids start from the clock", "topic", jm.opts.JobTopic,
			"waited", jm.opts.ResumeWait, "err", err)
		return
	}
	var last uint64
	for i := range msgs {
		var j btcpool.StratumJob
		if err := btcpool.DecodeStratumJob(msgs[i].Value, &j); err != nil {
			log.Warn("jobmaker: unreadable job on the topic ignored for the id sequence", "offset", msgs[i].Offset, "err", err)
			continue
		}
		last = max(last, j.JobID)
	}
	if last != 0 {
		jm.m.ids.Resume(last)
		log.Info("jobmaker: job ids resume after the last job on the topic", "topic", jm.opts.JobTopic, "last_job_id", last)
	}
}

// Jobs returns how many jobs Run has published (handed to the bus).
func (jm *JobMaker) Jobs() int64 { return jm.jobs.Load() }

// LastJobID returns the id of the last job Run published, 0 before the
// first.
func (jm *JobMaker) LastJobID() uint64 { return jm.lastJob.Load() }

// Run consumes templates and publishes jobs until ctx ends, then returns
// nil; it returns an error only on a permanent bus error (bus.IsPermanent):
// transient ones are ridden out with one log line per incident. Like btcpool it starts
// from the last template on the topic (OFFSET_TAIL(1)). Run may be called
// only once.
//
// The loop is btcpool's (spec §3.4): each accepted template may trigger a
// job at once; when a poll returns nothing, or when the messages made no
// job and job_interval has passed since the last attempt, the book is asked
// again, so the periodic refresh and expiry happen without new templates.
func (jm *JobMaker) Run(ctx context.Context) error {
	if !jm.running.CompareAndSwap(false, true) {
		return errors.New("jobmaker: Run called twice")
	}
	cons, err := jm.bus.NewConsumer(jm.opts.RawGbtTopic, bus.Start{Tail: 1})
	if err != nil {
		return fmt.Errorf("jobmaker: consumer for %s: %w", jm.opts.RawGbtTopic, err)
	}
	defer cons.Close()
	jm.resumeIDs(ctx)
	prod, err := jm.bus.NewProducer(bus.ProducerOptions{}) // no linger: jobs go out at once
	if err != nil {
		return fmt.Errorf("jobmaker: producer: %w", err)
	}
	defer prod.Close()
	auxErr := make(chan error, 2)
	for _, w := range []struct {
		topic string
		tail  int64
		rsk   bool
	}{{jm.opts.AuxRawGwTopic, auxTail, false}, {jm.opts.RSKRawGwTopic, 1, true}} {
		if w.topic == "" {
			continue
		}
		auxCons, err := jm.bus.NewConsumer(w.topic, bus.Start{Tail: w.tail})
		if err != nil {
			return fmt.Errorf("jobmaker: consumer for %s: %w", w.topic, err)
		}
		actx, acancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); auxErr <- jm.pollAux(actx, auxCons, w.topic, w.rsk) }()
		defer func() { acancel(); auxCons.Close(); <-done }()
	}

	log := jm.opts.Logger
	interval := jm.opts.JobInterval
	lastAttempt := jm.opts.Now()
	timeout := interval
	inc := &bus.Incident{Log: log, What: "jobmaker: polling " + jm.opts.RawGbtTopic}
	log.Info("jobmaker running", "id", jm.opts.ID, "rawgbt_topic", jm.opts.RawGbtTopic,
		"job_topic", jm.opts.JobTopic, "network", jm.opts.Network, "job_interval", interval)
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		// The watcher ends the poll early when a delivery fails. It is
		// joined before the loop goes on, so a wake-up can never be taken
		// by the watcher of a finished poll and lost: either this watcher
		// takes it (and the Swap below sees the job, stored before the
		// wake-up), or it stays in the buffered channel for the next poll.
		stop, joined := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(joined)
			select {
			case <-jm.wake:
				cancel()
			case <-stop:
			}
		}()
		msgs, err := bus.Poll(pctx, cons, inc) // rides out transient errors until pctx ends
		cut := pctx.Err() != nil               // the poll's timeout or a wake-up ended it
		close(stop)
		<-joined
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !cut { // permanent: a closed consumer, a configuration error
			return fmt.Errorf("jobmaker: polling %s: %w", jm.opts.RawGbtTopic, err)
		}
		select {
		case err := <-auxErr:
			return err
		default:
		}
		produced := false
		for drained := false; !drained; {
			select {
			case a := <-jm.auxIn:
				var err error
				if a.rsk {
					err = jm.m.acceptRSK(a.value, jm.opts.Now())
				} else {
					err = jm.m.acceptAux(a.key, a.value, jm.opts.Now())
				}
				if err != nil {
					log.Warn("merged-mining work refused", "rsk", a.rsk, "offset", a.offset, "err", err)
				} else if jm.produce(prod) {
					produced = true
					lastAttempt = jm.opts.Now()
				}
			default:
				drained = true
			}
		}
		for i := range msgs {
			if err := jm.m.accept(msgs[i].Value, jm.opts.Now()); err != nil {
				log.Warn("template refused", "offset", msgs[i].Offset, "err", err)
				continue
			}
			lastAttempt = jm.opts.Now()
			if jm.produce(prod) {
				produced = true
			}
		}
		now := jm.opts.Now()
		if len(msgs) == 0 || (!produced && now.Sub(lastAttempt) >= interval) {
			jm.produce(prod)
			lastAttempt = now
		}
		timeout = min(max(interval-now.Sub(lastAttempt), minPollTimeout), interval)
		if p := jm.undelivered.Swap(nil); p != nil {
			if p.id == jm.lastJob.Load() {
				log.Warn("publishing an undelivered job again", "job_id", p.id, "height", p.height)
				jm.publish(prod, p)
			}
			timeout = min(timeout, resendDelay)
		}
	}
}

// pollAux copies AuxRawGw (rsk: RskRawGw) records of topic to Run's loop until ctx ends; it
// returns an error only on a permanent bus error.
func (jm *JobMaker) pollAux(ctx context.Context, c bus.Consumer, topic string, rsk bool) error {
	inc := &bus.Incident{Log: jm.opts.Logger, What: "jobmaker: polling " + topic}
	for {
		msgs, err := bus.Poll(ctx, c, inc)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jobmaker: polling %s: %w", topic, err)
		}
		for i := range msgs {
			a := auxMsg{key: bytes.Clone(msgs[i].Key), value: bytes.Clone(msgs[i].Value), offset: msgs[i].Offset, rsk: rsk}
			select {
			case jm.auxIn <- a:
			case <-ctx.Done():
				return nil
			}
		}
		select {
		case jm.wake <- struct{}{}:
		default:
		}
	}
}

// pendingJob is a serialized job on its way to the bus.
type pendingJob struct {
	id     uint64
	height int32
	value  []byte
}

// publish hands p to the bus; a delivery failure marks it for Run to publish again.
func (jm *JobMaker) publish(prod bus.Producer, p *pendingJob) {
	prod.Publish(jm.opts.JobTopic, nil, p.value, func(err error) {
		if err != nil {
			jm.opts.Logger.Error("job not delivered to the bus", "job_id", p.id, "height", p.height, "err", err)
			jm.undelivered.Store(&pendingJob{id: p.id, height: p.height, value: bytes.Clone(p.value)})
			select {
			case jm.wake <- struct{}{}:
			default:
			}
		}
	})
}

// produce builds and publishes a job if one is due; it reports whether it
// did.
func (jm *JobMaker) produce(prod bus.Producer) bool {
	now := jm.opts.Now()
	defer jm.writeLastJobTime(now)
	j, why, err := jm.m.produce(now)
	if err != nil {
		jm.opts.Logger.Error("job not made", "trigger", why.String(), "err", err)
		return false
	}
	if j == nil {
		return false
	}
	value := btcpool.AppendStratumJob(make([]byte, 0, 1024+len(j.MerkleBranch)), j)
	if jm.m.merged != nil { // hashpool's key after btcpool's, inside the object
		value = appendMergedMining(value[:len(value)-1], jm.m.merged, jm.m.live)
		value = append(value, '}')
	}
	jm.jobs.Add(1)
	jm.lastJob.Store(j.JobID)
	jm.publish(prod, &pendingJob{id: j.JobID, height: j.Height, value: value})
	return true
}

// writeLastJobTime records a produce attempt in LastJobTimeFile. It
// writes a temporary file and renames it, so a monitor never reads a
// half-written (or empty) file.
func (jm *JobMaker) writeLastJobTime(now time.Time) {
	name := jm.opts.LastJobTimeFile
	if name == "" {
		return
	}
	b := strconv.AppendInt(nil, now.Unix(), 10)
	err := os.WriteFile(name+".tmp", b, 0o644)
	if err == nil {
		err = os.Rename(name+".tmp", name)
	}
	if err != nil {
		jm.opts.Logger.Warn("cannot write file_last_job_time", "err", err)
	}
}
