// Package userlist holds the user (sub-account) lists the stratum server
// (package engine) authorizes miners against: API, btcpool's list read from
// list_id_api_url (spec §4.11), and Embedded, the self-registering list of
// `hashpool run`, kept in an append-only file.
//
// It owns the name→id tables and their persistence. Lookups are safe from
// every event loop at once and never wait on disk or network: API fetches
// in its Run goroutine, Embedded assigns ids in memory and a background
// goroutine appends them to its file in batches (one fsync per batch).
// It must never import package engine (engine imports it) and never log
// per lookup.
package userlist
