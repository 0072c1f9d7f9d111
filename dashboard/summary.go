package dashboard

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/hashpool/hashpool/codec/btcpool"
)

// summary is the JSON pushed to every client each sample: everything on the page but the
// worker table.
type summary struct {
	Now         int64        `json:"now"`
	Hashrate5m  float64      `json:"hashrate_5m"`
	Hashrate15m float64      `json:"hashrate_15m"`
	Hashrate1h  float64      `json:"hashrate_1h"`
	AcceptCount int64        `json:"accept_count"` // accepted shares counted by statshttpd (last hour's workers)
	Stale15m    uint64       `json:"stale_diff_15m"`
	Reject15m   uint64       `json:"reject_diff_15m"`
	Rejects     []rejectView `json:"rejects_15m"` // rejected difficulty by reason
	Users       int          `json:"users"`
	Workers     int          `json:"workers"`
	Engine      []Counter    `json:"engine,omitempty"`
	Job         *jobView     `json:"job"`
	Blocks      []blockView  `json:"blocks"`
	Short       []point      `json:"chart_5m"`
	History     []point      `json:"chart_1d"`
}

type rejectView struct {
	Reason string `json:"reason"`
	Code   int64  `json:"code"`
	Diff   uint64 `json:"diff"`
}

type jobView struct {
	Height        int32  `json:"height"`
	PrevHash      string `json:"prevhash"`
	CoinbaseValue int64  `json:"coinbase_value"`
	Fees          int64  `json:"fees"`
	Created       int64  `json:"created"` // unix time the job was made (its id's upper half)
	NTime         int64  `json:"ntime"`   // the template's time
	Bits          uint32 `json:"bits"`
}

type blockView struct {
	Height        int32  `json:"height"`
	Hash          string `json:"hash"`
	Worker        string `json:"worker"`
	Rewards       int64  `json:"rewards"`
	Size          int32  `json:"size"`
	Orphaned      bool   `json:"orphaned"`
	Found         int64  `json:"found"`
	Confirmations *int64 `json:"confirmations"` // null: unknown (no node to ask)
}

func (s *Server) buildSummary() []byte {
	t := poolRows(s.currentRows())
	sm := summary{
		Now:         s.opts.Now().Unix(),
		Hashrate5m:  hashrate(t.accept5m, 300),
		Hashrate15m: hashrate(t.accept15m, 900),
		Hashrate1h:  hashrate(t.accept1h, 3600),
		AcceptCount: t.acceptCount,
		Stale15m:    t.stale15m,
		Reject15m:   t.reject15m,
		Users:       t.users,
		Workers:     t.workers,
	}
	for k, v := range t.rejects {
		code, _ := strconv.ParseInt(k, 10, 64)
		sm.Rejects = append(sm.Rejects, rejectView{Reason: btcpool.Status(code).String(), Code: code, Diff: v})
	}
	sort.Slice(sm.Rejects, func(i, j int) bool { return sm.Rejects[i].Code < sm.Rejects[j].Code })
	if s.opts.Counters != nil {
		sm.Engine = s.opts.Counters()
	}
	s.mu.Lock()
	sm.Job = s.job
	sm.Blocks = s.found
	sm.Short = append([]point(nil), s.short...)
	sm.History = append([]point(nil), s.history...)
	s.mu.Unlock()
	if sm.Blocks == nil {
		sm.Blocks = []blockView{}
	}
	b, err := json.Marshal(&sm)
	if err != nil {
		return []byte(`{}`)
	}
	return b
}

// workerRow is one line of the worker table.
type workerRow struct {
	PUID       int32   `json:"puid"`
	WorkerID   int64   `json:"worker_id"` // 0: the user's aggregate
	Name       string  `json:"name"`
	Hashrate   float64 `json:"hashrate"` // 15 min
	Accept     int64   `json:"accept_count"`
	RejectRate float64 `json:"reject_rate"` // rejected+stale / all, by difficulty, 15 min
	LastShare  int64   `json:"last_share"`
	LastIP     string  `json:"last_ip"`
}

// workerPage is one filtered, sorted page of the worker table.
type workerPage struct {
	Total int         `json:"total"` // rows matching the filter
	Rows  []workerRow `json:"rows"`
}

// maxPageRows bounds one page of the worker table.
const maxPageRows = 500

// workers returns a page of the table: rows whose name or ids contain q, sorted by key
// (name, hashrate, accept, reject_rate, last_share) in the given direction.
func (s *Server) workers(q, key string, desc bool, offset, limit int) workerPage {
	rows := s.currentRows()
	s.mu.Lock()
	names := s.names
	s.mu.Unlock()
	q = strings.ToLower(strings.TrimSpace(q))
	out := make([]workerRow, 0, len(rows))
	for _, r := range rows {
		name := names[workerKey{r.PUID, r.WorkerID}]
		if name == "" {
			if r.WorkerID == 0 {
				name = "user " + strconv.Itoa(int(r.PUID))
			} else {
				name = strconv.Itoa(int(r.PUID)) + "/" + strconv.FormatInt(r.WorkerID, 10)
			}
		}
		if q != "" && !strings.Contains(strings.ToLower(name), q) && !strings.Contains(strconv.Itoa(int(r.PUID)), q) {
			continue
		}
		all := float64(r.Accept15m + r.Stale15m + r.Reject15m)
		rate := 0.0
		if all > 0 {
			rate = float64(r.Stale15m+r.Reject15m) / all
		}
		out = append(out, workerRow{PUID: r.PUID, WorkerID: r.WorkerID, Name: name, Hashrate: hashrate(uint64(max(r.Accept15m, 0)), 900),
			Accept: int64(r.AcceptCount), RejectRate: rate, LastShare: r.LastShareTime.Unix(), LastIP: r.LastShareIP})
	}
	less := func(a, b *workerRow) bool {
		switch key {
		case "hashrate":
			return a.Hashrate < b.Hashrate
		case "accept":
			return a.Accept < b.Accept
		case "reject_rate":
			return a.RejectRate < b.RejectRate
		case "last_share":
			return a.LastShare < b.LastShare
		}
		return a.Name < b.Name
	}
	sort.Slice(out, func(i, j int) bool {
		if desc {
			return less(&out[j], &out[i])
		}
		return less(&out[i], &out[j])
	})
	page := workerPage{Total: len(out)}
	offset = min(max(offset, 0), len(out))
	limit = min(max(limit, 1), maxPageRows)
	page.Rows = out[offset:min(offset+limit, len(out))]
	return page
}
