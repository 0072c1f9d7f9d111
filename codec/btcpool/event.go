package btcpool

import (
	"math"
	"net/netip"
	"strconv"
	"time"
)

// CommonEvent types and actions btcpool produces (spec §4.15).
const (
	EventTypeWorkerUpdate = "worker_update"
	ActionMinerConnect    = "miner_connect"
	ActionMinerDead       = "miner_dead"
	DescNewConn           = "new_conn"
	DescDelConn           = "del_conn"
	DescFromBtcAgent      = "from_btcagent"
	DescSwitchChain       = "switch_chain"
)

// eventTimeLayout is created_at's format, always UTC.
const eventTimeLayout = "2006-01-02 15:04:05"

// CommonEvent is a BtcCommonEvents message: a worker connected or went away (spec §4.15).
type CommonEvent struct {
	CreatedAt  time.Time // written in UTC with second precision
	Type       string    // EventTypeWorkerUpdate
	Action     string    // ActionMinerConnect or ActionMinerDead
	UserID     int32
	UserName   string
	WorkerID   int64
	WorkerName string
	MinerAgent string
	IP         netip.Addr // the zero Addr is written "0.0.0.0"
	SessionID  uint32     // written as %08x
	Desc       string     // DescNewConn, DescDelConn, DescFromBtcAgent, DescSwitchChain
	// ExtUserID is written (as "ext_user_id") only when HasExtUserID is set.
	ExtUserID    int32
	HasExtUserID bool
}

// AppendCommonEvent appends the JSON of e in btcpool's key order:
// {"created_at":..,"type":..,"action":..,"content":{"user_id":..,"user_name":..,"worker_id":..,
// "worker_name":..,"miner_agent":..,"ip":..,"session_id":..,"desc":..[,"ext_user_id":..]}}.
// Names are JSON-escaped.
func AppendCommonEvent(dst []byte, e *CommonEvent) []byte {
	dst = append(dst, `{"created_at":"`...)
	dst = e.CreatedAt.UTC().AppendFormat(dst, eventTimeLayout)
	dst = append(dst, '"')
	dst = appendKey(dst, true, "type")
	dst = appendJSONString(dst, e.Type)
	dst = appendKey(dst, true, "action")
	dst = appendJSONString(dst, e.Action)
	dst = append(dst, `,"content":{"user_id":`...)
	dst = strconv.AppendInt(dst, int64(e.UserID), 10)
	dst = appendKey(dst, true, "user_name")
	dst = appendJSONString(dst, e.UserName)
	dst = appendKey(dst, true, "worker_id")
	dst = strconv.AppendInt(dst, e.WorkerID, 10)
	dst = appendKey(dst, true, "worker_name")
	dst = appendJSONString(dst, e.WorkerName)
	dst = appendKey(dst, true, "miner_agent")
	dst = appendJSONString(dst, e.MinerAgent)
	dst = appendKey(dst, true, "ip")
	dst = append(dst, '"')
	dst = appendIP(dst, e.IP)
	dst = append(dst, '"')
	dst = appendKey(dst, true, "session_id")
	dst = append(dst, '"')
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(e.SessionID>>uint(shift))&0xf])
	}
	dst = append(dst, '"')
	dst = appendKey(dst, true, "desc")
	dst = appendJSONString(dst, e.Desc)
	if e.HasExtUserID {
		dst = appendKey(dst, true, "ext_user_id")
		dst = strconv.AppendInt(dst, int64(e.ExtUserID), 10)
	}
	return append(dst, '}', '}')
}

// DecodeCommonEvent decodes a CommonEvents message into e (overwritten). Required: type and
// action strings, and a content object with integer user_id and worker_id; created_at,
// user_name, worker_name, miner_agent, ip, session_id, desc and ext_user_id are optional but
// must have the right type and form when present (created_at "YYYY-MM-DD HH:MM:SS" UTC, ip an
// address, session_id 1–8 hex digits). Unknown keys are ignored.
func DecodeCommonEvent(b []byte, e *CommonEvent) error {
	p, o, err := parseObject(b, "CommonEvent")
	if err != nil {
		return err
	}
	defer parsers.Put(p)
	d := jsonObject{o: o, msg: "CommonEvent"}
	var out CommonEvent
	created := d.str("created_at", false)
	out.Type = d.str("type", true)
	out.Action = d.str("action", true)
	if created != "" && d.err == nil {
		t, err := time.Parse(eventTimeLayout, created)
		if err != nil {
			d.fail("created_at", "is not YYYY-MM-DD HH:MM:SS")
		}
		out.CreatedAt = t
	}
	cv := d.get("content", true)
	if cv != nil && d.err == nil {
		co, err := cv.Object()
		if err != nil {
			d.fail("content", "is not an object")
		} else {
			c := jsonObject{o: co, msg: "CommonEvent content"}
			out.UserID = int32(c.i64("user_id", true, math.MinInt32, math.MaxInt32))
			out.UserName = c.str("user_name", false)
			out.WorkerID = c.i64("worker_id", true, math.MinInt64, math.MaxInt64)
			out.WorkerName = c.str("worker_name", false)
			out.MinerAgent = c.str("miner_agent", false)
			ip := c.str("ip", false)
			sid := c.str("session_id", false)
			out.Desc = c.str("desc", false)
			if c.get("ext_user_id", false) != nil {
				out.ExtUserID = int32(c.i64("ext_user_id", false, math.MinInt32, math.MaxInt32))
				out.HasExtUserID = true
			}
			if ip != "" && c.err == nil {
				a, ok := parseIP([]byte(ip))
				if !ok {
					c.fail("ip", "is not an IP address")
				}
				out.IP = a
			}
			if sid != "" && c.err == nil {
				v, ok := parseHex32(sid)
				if !ok {
					c.fail("session_id", "is not 1-8 hex digits")
				}
				out.SessionID = v
			}
			d.err = c.err
		}
	}
	if d.err != nil {
		return d.err
	}
	*e = out
	return nil
}

func parseHex32(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > 8 {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		x := unhex(s[i])
		if x > 15 {
			return 0, false
		}
		v = v<<4 | uint32(x)
	}
	return v, true
}
