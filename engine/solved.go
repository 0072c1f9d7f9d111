package engine

import (
	"context"

	"github.com/panjf2000/gnet/v2"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// journalFlag is the journal header flag of a solved share: none for a parent block's
// SolvedShare, auxFlag for an AuxSolvedShare, rskFlag for an RskSolvedShare.
func journalFlag(aux, rsk bool) uint32 {
	switch {
	case rsk:
		return rskFlag
	case aux:
		return auxFlag
	}
	return 0
}

// solvedTopic returns the topic a journaled solved share goes to ("" when that merged-mining
// topic is not configured) and the topic's role, for logs.
func solvedTopic(t bus.Topics, e JournalEntry) (topic, name string) {
	switch {
	case e.Rsk:
		return t.RskSolvedShare, "RskSolvedShare"
	case e.Aux:
		return t.AuxSolvedShare, "AuxSolvedShare"
	}
	return t.SolvedShare, "SolvedShare"
}

// solved is called on the loop for a share that meets the network target:
// the SolvedShare message goes to the journal goroutine (a hand-off that
// never blocks), and every job at or below its height is marked stale.
//
// The session's answers from this share on are held (Session.held) until
// the share's journal record is written and fsync'd: a miner that was told
// true can then always count on the share being republished after a crash.
// OnTraffic writes what precedes the hold point at once; the journal
// goroutine calls releaseHeld, which writes the held answers on the loop.
// Holding every later answer too keeps them in order, which agents need
// (a SUBMIT_RESPONSE stands for every earlier unanswered share).
func (s *Server) solved(sess *Session, m *miner, j *Job, en2 []byte, in *shareInput, now int64) {
	hdr := sess.lp.hasher.ShareHeader(j.Hash, sess.en1[:], en2, in.ntime, in.nonce, in.versionMask)
	msg := btcpool.SolvedShare{JobID: j.ID, WorkerID: m.workerID, UserID: sess.userID, Height: j.Height, Header: hdr,
		WorkerFullName: sess.userName + "." + m.worker, Coinbase: j.Hash.AppendCoinbase(nil, sess.en1[:], en2)}
	it := solvedItem{msg: btcpool.AppendSolvedShare(nil, &msg)}
	if sess.conn != nil { // socket-free tests have no loop to release the answer on
		if sess.holdN == 0 && sess.holdAt < 0 {
			sess.holdAt = len(sess.lp.out)
		}
		sess.holdN++
		it.sess = sess
	}
	s.out.pushSolved(it)
	s.repo.MarkStale(j.Height)
	s.log.Info("block found", "height", j.Height, "job", j.ID, "worker", msg.WorkerFullName)
}

// releaseHeld runs on the journal goroutine once one of sess's solved
// shares is journaled: on sess's loop it writes the held answers when none
// is left waiting. The session may be gone by then; nothing is written.
func (s *Server) releaseHeld(sess *Session) {
	lp := sess.lp
	err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		sess.holdN--
		if sess.holdN > 0 || sess.closed {
			return nil
		}
		if len(sess.held) > 0 {
			c := sess.conn.(gnet.Conn)
			_, _ = c.Write(sess.held)
			sess.held = nil
			if c.OutboundBuffered() > s.opts.MaxOutbound {
				s.metrics.SlowClosed.Add(1)
				sess.closed = true
				_ = lp.el.Close(c)
			}
		}
		return nil
	}))
	if err != nil {
		s.log.Debug("held answer not written: the event loops stopped", "err", err)
	}
}
