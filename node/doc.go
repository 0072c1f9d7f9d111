// Package node talks to a Bitcoin node (Bitcoin Core's bitcoind or btcd) for the pool.
//
// It owns:
//   - a strict JSON-RPC 1.0 client over HTTP ([Client]) that works with both nodes: every request
//     carries "jsonrpc":"1.0", a non-null "id" and a "params" array (btcd answers nothing
//     otherwise), basic auth from a user and password or from bitcoind's cookie file, a timeout per
//     call, keep-alive where the node allows it, and a bound on every response body;
//   - getblocktemplate with the segwit rule and BIP22 long polling, returning both the exact
//     response text (gbtmaker hashes and forwards it byte for byte) and the parsed, validated
//     fields ([Template], [ParseTemplate]); [ParseTemplateWith] is the pool's one template parser,
//     used by gbtmaker, jobmaker and blockmaker with their [TemplateRules] (which fields they
//     require; blockmaker and jobmaker also have every transaction decoded for its txid);
//   - submitblock with its answer interpreted into a [SubmitResult] (null, BIP22 strings, btcd's
//     "rejected: ..." strings and RPC errors such as -22);
//   - small queries: getblockcount, getbestblockhash, getnetworkinfo (with btcd's getinfo as the
//     fallback), generate / generatetoaddress for regtest;
//   - [Sleep], the context-aware pause between retries of node calls;
//   - a ZMQ "hashblock" subscriber ([HashBlockSubscriber]) with sequence-gap detection and
//     reconnection with backoff.
//
// It must never: log at Info or above for routine calls (it logs only through a *slog.Logger it
// is given), keep state about templates or jobs (that is jobs/), retry a submitblock by itself
// (the caller decides, blockmaker retries on every node), or read an unbounded amount of data
// from the network.
package node
