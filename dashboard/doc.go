// Package dashboard is the operator's live web page: pool hashrate over 5 minutes, an hour and
// a day; shares accepted and rejected by reason; connected miners and agents; the current job;
// found blocks with their confirmations; and a searchable, sortable table of every user and
// worker. `hashpool run` serves it on the statshttpd address under /dashboard/, and so does
// `hashpool statshttpd` in split mode.
//
// One source of truth: every number on the page is read from what the JSON APIs serve: the
// statshttpd windows (the same rows mining_workers gets), the found_blocks table, the job
// topic and, inside `hashpool run`, the engine's counters. The dashboard only keeps a history of
// the pool's hashrate (one point per sample, a day long, seeded from stats_pool_hour at start);
// it never counts a share itself.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (embed.FS): no build step,
// no CDN, works offline on a LAN. Charts are hand-written SVG polylines: a chart library would
// add 40–200 KB to draw three lines (see docs/DESIGN.md).
//
// Live updates are Server-Sent Events: every SampleInterval one JSON summary is encoded once
// and offered to every client; a client that has not taken the previous one skips to the
// newest (one pending message per client, so a stalled browser costs a few KB, never a
// growing queue). Clients are capped (MaxClients) and every write has a deadline, so the page
// can stay open for days. The worker table is not pushed: the page asks for one sorted,
// filtered page of it (/dashboard/api/workers) so 10,000 workers stay responsive.
//
// It is read-only: only GET and HEAD are served, nothing changes state. An operator who
// exposes it beyond the LAN sets a token (Authorization: Bearer, or ?token= once, which sets a
// cookie) and/or HTTP basic auth.
package dashboard
