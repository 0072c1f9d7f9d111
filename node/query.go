package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// GetBlockCount returns the height of the node's best chain.
func (c *Client) GetBlockCount(ctx context.Context) (int64, error) {
	var n int64
	if err := c.Call(ctx, "getblockcount", nil, &n); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("node: getblockcount: negative height %d", n)
	}
	return n, nil
}

// GetBestBlockHash returns the hash of the best chain's tip in display hex (64 characters).
func (c *Client) GetBestBlockHash(ctx context.Context) (string, error) {
	var h string
	if err := c.Call(ctx, "getbestblockhash", nil, &h); err != nil {
		return "", err
	}
	if !isHash(h) {
		return "", fmt.Errorf("node: getbestblockhash: %q is not a 64-character hex hash", h)
	}
	return h, nil
}

// NetworkInfo is the part of getnetworkinfo the pool checks.
type NetworkInfo struct {
	Version     int64  // node version number (0 when the node does not say)
	Subversion  string // user agent, e.g. "/Satoshi:27.0.0/" (empty on btcd)
	Connections int64  // number of peers
}

// GetNetworkInfo calls getnetworkinfo and requires result.connections to be an integer, which
// is btcpool's startup check of the node (checkBitcoinRPC). btcd does not implement
// getnetworkinfo; there the same fields are read from getinfo.
func (c *Client) GetNetworkInfo(ctx context.Context) (NetworkInfo, error) {
	var raw map[string]json.RawMessage
	err := c.Call(ctx, "getnetworkinfo", nil, &raw)
	var re *RPCError
	if errors.As(err, &re) && (re.Code == CodeMisc || re.Code == CodeMethodNotFound) {
		raw = nil
		err = c.Call(ctx, "getinfo", nil, &raw)
	}
	if err != nil {
		return NetworkInfo{}, err
	}
	var ni NetworkInfo
	conns, ok := raw["connections"]
	if !ok || json.Unmarshal(conns, &ni.Connections) != nil {
		return NetworkInfo{}, fmt.Errorf("node: getnetworkinfo: result.connections is missing or not an integer (%q)", quoteStart(conns))
	}
	if v, ok := raw["version"]; ok {
		_ = json.Unmarshal(v, &ni.Version) // informational only
	}
	if v, ok := raw["subversion"]; ok {
		_ = json.Unmarshal(v, &ni.Subversion)
	}
	return ni, nil
}

// Generate mines n blocks to the node's configured mining address (btcd's "generate", also
// old bitcoind) and returns their hashes. Regtest and simnet only.
func (c *Client) Generate(ctx context.Context, n int) ([]string, error) {
	var hashes []string
	if err := c.Call(ctx, "generate", []any{n}, &hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

// GenerateToAddress mines n blocks paying addr (Bitcoin Core's "generatetoaddress") and
// returns their hashes. Regtest only; btcd has only [Client.Generate].
func (c *Client) GenerateToAddress(ctx context.Context, n int, addr string) ([]string, error) {
	var hashes []string
	if err := c.Call(ctx, "generatetoaddress", []any{n, addr}, &hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

// SendRawTransaction submits a hex-encoded transaction to the node's mempool and returns its
// txid in display hex.
func (c *Client) SendRawTransaction(ctx context.Context, txHex string) (string, error) {
	var txid string
	if err := c.Call(ctx, "sendrawtransaction", []any{txHex}, &txid); err != nil {
		return "", err
	}
	if !isHash(txid) {
		return "", fmt.Errorf("node: sendrawtransaction: %q is not a txid", txid)
	}
	return txid, nil
}

// isHash reports whether s is 64 hex characters.
func isHash(s string) bool {
	return isHexLen(s, 64)
}
