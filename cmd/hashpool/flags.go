package main

import (
	"flag"
	"net"
	"strconv"
	"strings"
)

// flags are the command-line overrides; a flag that is not given leaves the file's value.
type flags struct {
	network, dataDir, kafka, logLevel, logFormat           string
	nodeURL, nodeAuth, nodeCookie, zmq                     string
	payout, coinbaseInfo, stratum, statsHTTP, slparserHTTP string
	metrics, db, compression                               string
	serverID                                               int
	slDate                                                 string
	slDump                                                 int64
	minDiff, defaultDiff                                   float64
	stratumTLS, stratumTLSCert, stratumTLSKey              string
	versionMask                                            uint
	simulator                                              bool
	rskURL, rskAuth                                        string
	sv2, sv2AuthorityKey                                   string
}

func bindFlags(fs *flag.FlagSet, name string) *flags {
	f := &flags{}
	if name == "slparser" {
		fs.StringVar(&f.slDate, "date", "", "parse the share log of this UTC day (YYYYMMDD) into the stats tables once, then exit")
		fs.Int64Var(&f.slDump, "dump", -1, "with -date: print that day's shares of this user id (0: every user) instead")
	}
	fs.StringVar(&f.network, "network", "", "chain: mainnet, testnet3, testnet4, signet, regtest")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory (database, share logs, journal)")
	fs.StringVar(&f.kafka, "kafka", "", "comma-separated Kafka brokers (host:port); default: in-process bus")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json")
	fs.StringVar(&f.nodeURL, "node", "", "node JSON-RPC URL, e.g. http://127.0.0.1:8332")
	fs.StringVar(&f.nodeAuth, "node-auth", "", "node RPC credentials user:password")
	fs.StringVar(&f.nodeCookie, "node-cookie", "", "bitcoind .cookie file (instead of -node-auth)")
	fs.StringVar(&f.zmq, "zmq", "", "bitcoind ZMQ hashblock endpoint, e.g. tcp://127.0.0.1:28332")
	fs.StringVar(&f.rskURL, "rsk", "", "RSK node JSON-RPC URL for RSK merged mining, e.g. http://127.0.0.1:4444")
	fs.StringVar(&f.rskAuth, "rsk-auth", "", "RSK node RPC credentials user:password")
	fs.StringVar(&f.payout, "payout-address", "", "address that receives the block rewards")
	fs.StringVar(&f.coinbaseInfo, "coinbase-info", "", "tag written into every coinbase")
	fs.StringVar(&f.stratum, "stratum", "", "stratum listen address ip:port")
	fs.StringVar(&f.stratumTLS, "stratum-tls", "", "stratum+ssl listen address ip:port (needs -stratum-tls-cert and -stratum-tls-key)")
	fs.StringVar(&f.stratumTLSCert, "stratum-tls-cert", "", "PEM certificate chain for -stratum-tls")
	fs.StringVar(&f.stratumTLSKey, "stratum-tls-key", "", "PEM private key for -stratum-tls")
	fs.StringVar(&f.sv2, "sv2", "", "Stratum V2 listen address ip:port (Noise; see -sv2-authority-key)")
	fs.StringVar(&f.sv2AuthorityKey, "sv2-authority-key", "", "file with the hex secret key that signs the SV2 certificate (default: generated in the data dir)")
	fs.IntVar(&f.serverID, "server-id", 0, "sserver id 1..255 (unique per sserver process)")
	fs.Float64Var(&f.minDiff, "min-difficulty", 0, "lowest share difficulty (fractional on test networks)")
	fs.Float64Var(&f.defaultDiff, "default-difficulty", 0, "starting share difficulty")
	fs.UintVar(&f.versionMask, "version-mask", DefaultVersionMask, "BIP310 version-rolling mask (hex with 0x, or decimal); 0 = none")
	fs.BoolVar(&f.simulator, "simulator", false, "accept low-difficulty shares (load tests only)")
	fs.StringVar(&f.statsHTTP, "stats-http", "", "statshttpd listen address ip:port")
	fs.StringVar(&f.slparserHTTP, "slparser-http", "", "slparser listen address ip:port")
	fs.StringVar(&f.metrics, "metrics", "", "Prometheus /metrics listen address ip:port (empty string in the file disables)")
	fs.StringVar(&f.db, "db", "", "database: sqlite:///path.db or mysql://user:pass@tcp(host:3306)/db")
	fs.StringVar(&f.compression, "sharelog-compression", "", "share-log files: gzip or zstd")
	return f
}

// apply copies the flags that were given into cfg.
func (f *flags) apply(fs *flag.FlagSet, cfg *Config) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "network":
			cfg.Network = f.network
		case "data-dir":
			cfg.DataDir = f.dataDir
		case "kafka":
			cfg.Kafka.Brokers = splitList(f.kafka)
		case "log-level":
			cfg.Log.Level = f.logLevel
		case "log-format":
			cfg.Log.Format = f.logFormat
		case "node":
			cfg.Node.RPCAddr = f.nodeURL
		case "node-auth":
			cfg.Node.RPCUserPwd = f.nodeAuth
		case "node-cookie":
			cfg.Node.CookieFile = f.nodeCookie
		case "zmq":
			cfg.Node.ZMQAddr = f.zmq
		case "rsk":
			cfg.RSK.RPCAddr = f.rskURL
		case "rsk-auth":
			cfg.RSK.RPCUserPwd = f.rskAuth
		case "payout-address":
			cfg.JobMaker.PayoutAddress = f.payout
		case "coinbase-info":
			cfg.JobMaker.CoinbaseInfo = f.coinbaseInfo
		case "stratum-tls":
			cfg.SServer.TLSListen = f.stratumTLS
		case "stratum-tls-cert":
			cfg.SServer.TLSCertFile = f.stratumTLSCert
		case "stratum-tls-key":
			cfg.SServer.TLSKeyFile = f.stratumTLSKey
		case "stratum":
			cfg.SServer.IP, cfg.SServer.Port = splitHostPort(f.stratum, cfg.SServer.IP, cfg.SServer.Port)
		case "sv2":
			cfg.SServer.SV2Listen = f.sv2
		case "sv2-authority-key":
			cfg.SServer.SV2AuthorityKeyFile = f.sv2AuthorityKey
		case "server-id":
			cfg.SServer.ID = f.serverID
		case "min-difficulty":
			cfg.SServer.MinDifficulty = f.minDiff
		case "default-difficulty":
			cfg.SServer.DefaultDifficulty = f.defaultDiff
		case "version-mask":
			cfg.SServer.VersionMask = VersionMask(f.versionMask)
		case "simulator":
			cfg.SServer.EnableSimulator = f.simulator
		case "stats-http":
			cfg.StatsHTTPD.IP, cfg.StatsHTTPD.Port = splitHostPort(f.statsHTTP, cfg.StatsHTTPD.IP, cfg.StatsHTTPD.Port)
		case "slparser-http":
			cfg.SLParser.IP, cfg.SLParser.Port = splitHostPort(f.slparserHTTP, cfg.SLParser.IP, cfg.SLParser.Port)
		case "metrics":
			cfg.Metrics.Enabled = f.metrics != ""
			cfg.Metrics.Address, cfg.Metrics.Port = splitHostPort(f.metrics, cfg.Metrics.Address, cfg.Metrics.Port)
		case "db":
			cfg.DB.DSN = f.db
		case "date":
			cfg.SLParserOnce.Date = f.slDate
		case "dump":
			cfg.SLParserOnce.DumpUser = f.slDump
		case "sharelog-compression":
			cfg.ShareLog.Compression = f.compression
		}
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// splitHostPort parses "ip:port"; a part that is missing or bad keeps its old value, so
// validation downstream reports the problem with the component's own message.
func splitHostPort(s, host string, port int) (string, int) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return host, port
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return h, port
	}
	return h, n
}
