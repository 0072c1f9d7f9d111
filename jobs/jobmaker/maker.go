package jobmaker

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// warnGbtAge is the age (either sign) from which an accepted template is
// logged as late (spec §3.2 step 3).
const warnGbtAge = 3

// maker is the jobmaker without the bus: it takes RawGbt message values and
// returns jobs. Run feeds it from the bus; tests drive it with a fake clock.
// It is not safe for concurrent use.
type maker struct {
	log    *slog.Logger
	book   book
	ids    *IDGenerator
	params jobParams
	aux    auxBook
	rsk    rskBook
	// merged and live are the aux tree and chains of the last job produce returned (nil
	// without aux work).
	merged *auxpow.Merged
	live   []*auxEntry
}

func newMaker(o Options) (*maker, error) {
	payout, err := PayoutScript(o.Network, o.PayoutAddress)
	if err != nil {
		return nil, err
	}
	return &maker{
		log: o.Logger,
		book: book{
			jobInterval: int64(o.JobInterval / time.Second),
			lifeTime:    int64(o.GbtLifeTime / time.Second),
			emptyLife:   int64(o.EmptyGbtLifeTime / time.Second),
		},
		ids: NewIDGenerator(uint8(o.ID)),
		params: jobParams{
			info:         []byte(o.CoinbaseInfo),
			payout:       payout,
			blockVersion: o.BlockVersion,
		},
		aux: auxBook{policy: o.AuxNotifyPolicy},
		rsk: rskBook{policy: o.RSKNotifyPolicy},
	}, nil
}

// accept takes one RawGbt message value into the book (spec §3.2). It
// returns nil only when the template was added.
func (m *maker) accept(value []byte, now time.Time) error {
	var raw btcpool.RawGbt
	if err := btcpool.DecodeRawGbt(value, &raw); err != nil {
		return err
	}
	hash, err := sha.ParseDisplayHex(raw.GbtHash)
	if err != nil {
		return fmt.Errorf("jobmaker: RawGbt gbthash: %w", err)
	}
	age, err := m.book.admit(hash, raw.CreatedAt, now.Unix())
	if err != nil {
		return err
	}
	if age >= warnGbtAge || age <= -warnGbtAge {
		m.log.Warn("late template", "age_s", age, "gbthash", raw.GbtHash)
	}
	if base64.StdEncoding.DecodedLen(len(raw.BlockTemplateBase64)) > MaxTemplateSize {
		return fmt.Errorf("jobmaker: block_template_base64 is %d bytes, limit %d decoded", len(raw.BlockTemplateBase64), MaxTemplateSize)
	}
	text, err := base64.StdEncoding.DecodeString(raw.BlockTemplateBase64)
	if err != nil {
		return fmt.Errorf("jobmaker: block_template_base64: %w", err)
	}
	t, err := ParseTemplate(text)
	if err != nil {
		return err
	}
	added, err := m.book.insert(hash, raw.CreatedAt, t)
	if err != nil {
		return err
	}
	if !added {
		m.log.Warn("template key already in the book", "height", t.Height, "created_at", raw.CreatedAt, "empty", t.Empty())
		return nil
	}
	m.log.Info("template added", "height", t.Height, "gbthash", raw.GbtHash, "created_at", raw.CreatedAt,
		"empty", t.Empty(), "txs", len(t.TxIDs), "templates", len(m.book.entries))
	return nil
}

// acceptAux takes one AuxRawGw message; a notify policy that asks for a job marks the book.
func (m *maker) acceptAux(key, value []byte, now time.Time) error {
	notify, err := m.aux.acceptAux(key, value, now.Unix())
	if err != nil {
		return err
	}
	if notify {
		m.book.mergedMining = true
	}
	return nil
}

// acceptRSK takes one RskRawGw message; a notify policy that asks for a job marks the book.
func (m *maker) acceptRSK(value []byte, now time.Time) error {
	notify, err := m.rsk.accept(value, now.Unix())
	if err != nil {
		return err
	}
	if notify {
		m.book.mergedMining = true
	}
	return nil
}

// produce builds a job if one is due at now (spec §3.3 steps 2 to 4).
func (m *maker) produce(now time.Time) (*btcpool.StratumJob, Trigger, error) {
	sec := now.Unix()
	t, why := m.book.due(sec)
	if why == NoTrigger {
		return nil, NoTrigger, nil
	}
	ts := uint32(sec)
	params := m.params
	merged, live, err := m.aux.current(sec)
	if err != nil {
		m.log.Error("aux work not merged: job without merged mining", "err", err)
		merged, live = nil, nil
	}
	if merged != nil {
		params.aux = merged.AppendCommitment(make([]byte, 0, auxpow.CommitmentSize))
	}
	rsk := m.rsk.current(sec)
	if rsk != nil {
		params.rsk = &rsk.hash
	}
	j, err := buildJob(t, params, ts, m.ids.Next(ts))
	if err != nil {
		return nil, why, fmt.Errorf("jobmaker: job for height %d: %w", t.Height, err)
	}
	m.merged, m.live = merged, live
	if merged != nil {
		setAuxFields(j, live)
		j.MergedMiningClean = why == MergedMining
	}
	if rsk != nil {
		setRSKFields(j, rsk, m.rsk.clean && why == MergedMining)
		j.MergedMiningClean = why == MergedMining
	}
	m.rsk.clean = false
	m.book.sent(t, sec)
	m.log.Info("job made", "job_id", j.JobID, "height", j.Height, "trigger", why.String(),
		"txs", len(t.TxIDs), "empty", t.Empty(), "gbthash", j.GbtHash)
	return j, why, nil
}
