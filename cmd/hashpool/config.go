package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hashpool/hashpool/blockmaker"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/dashboard"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/jobs/auxmaker"
	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/jobs/gbtmaker"
	"github.com/hashpool/hashpool/jobs/jobmaker"
	"github.com/hashpool/hashpool/jobs/rskmaker"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sharelog/slparser"
	"github.com/hashpool/hashpool/sharelog/statshttpd"
	"github.com/hashpool/hashpool/tlsfront"
)

// Config is the whole configuration file. Key names follow btcpool's .cfg files where btcpool
// has the setting; durations are whole seconds, as there. Every section has its defaults in
// defaultConfig; a file only needs the keys it changes. docs/CONFIG.md describes every key.
type Config struct {
	// Network is the chain: mainnet, testnet3, testnet4, signet or regtest.
	Network string `toml:"network" comment:"mainnet, testnet3, testnet4, signet or regtest"`
	// DataDir holds the SQLite database, share logs, the solved-share journal and the user list.
	DataDir string    `toml:"data_dir" comment:"SQLite database, share logs, solved-share journal, embedded users"`
	Log     LogConfig `toml:"log"`
	// Kafka brokers; empty runs every component in one process on the in-process bus.
	Kafka      KafkaConfig      `toml:"kafka"`
	Topics     TopicsConfig     `toml:"topics"`
	Node       NodeConfig       `toml:"bitcoind"`
	DB         DBConfig         `toml:"pooldb"`
	GbtMaker   GbtMakerConfig   `toml:"gbtmaker"`
	JobMaker   JobMakerConfig   `toml:"jobmaker"`
	SServer    SServerConfig    `toml:"sserver"`
	Users      UsersConfig      `toml:"users"`
	BlkMaker   BlkMakerConfig   `toml:"blkmaker"`
	ShareLog   ShareLogConfig   `toml:"sharelog"`
	SLParser   SLParserConfig   `toml:"slparserhttpd"`
	StatsHTTPD StatsHTTPDConfig `toml:"statshttpd"`
	Metrics    MetricsConfig    `toml:"prometheus"`
	Dashboard  DashboardConfig  `toml:"dashboard"`
	Aux        []AuxConfig      `toml:"aux" comment:"merged mining: one [[aux]] table per aux chain (namecoind or any createauxblock node); none = merged mining off"`
	RSK        RSKConfig        `toml:"rsk" comment:"RSK merged mining (tested against RSK's published API, not a real rskj); empty rpc_addr = off"`
	Runtime    RuntimeConfig    `toml:"runtime"`
	Debug      DebugConfig      `toml:"debug"`

	// SLParserOnce holds slparser's one-shot modes (flags only).
	SLParserOnce SLParserOnce `toml:"-"`

	sv2Authority string // the SV2 authority public key (engineOptions sets it)
}

// SLParserOnce are `hashpool slparser` flags: re-parse one day into the tables, or dump its shares.
type SLParserOnce struct {
	Date     string // YYYYMMDD; empty: follow today's file
	DumpUser int64  // -1: no dump; 0: every user; >0: that puid
}

// LogConfig sets up logging.
type LogConfig struct {
	Level  string `toml:"level" comment:"debug, info, warn or error"`
	Format string `toml:"format" comment:"text or json"`
}

// KafkaConfig names the brokers.
type KafkaConfig struct {
	Brokers         []string `toml:"brokers" comment:"host:port list; empty = in-process bus (hashpool run only)"`
	SessionTimeout  int      `toml:"session_timeout" comment:"seconds: consumer-group session timeout (the broker's group.min/max.session.timeout.ms must allow it)"`
	DeliveryTimeout int      `toml:"delivery_timeout" comment:"seconds a record is retried before its delivery is reported failed (solved shares are then published again)"`
	ClientID        string   `toml:"client_id" comment:"client.id sent to the brokers (their logs, quotas, and the group member list); empty = hashpool"`
}

// TopicsConfig are the bus topic names (btcpool HEAD's defaults).
type TopicsConfig struct {
	RawGbt       string `toml:"rawgbt_topic"`
	Job          string `toml:"job_topic"`
	Share        string `toml:"share_topic"`
	SolvedShare  string `toml:"solved_share_topic"`
	CommonEvents string `toml:"common_events_topic"`
	// The aux topics are used only when an [[aux]] chain is configured.
	AuxRawGw       string `toml:"auxpow_gw_topic" comment:"aux chains' work (used only with [[aux]])"`
	AuxSolvedShare string `toml:"auxpow_solved_share_topic" comment:"shares meeting an aux target (used only with [[aux]])"`
	// The RSK topics are used only when [rsk] has an rpc_addr.
	RskRawGw       string `toml:"rsk_rawgw_topic" comment:"RSK work (used only with [rsk])"`
	RskSolvedShare string `toml:"rsk_solved_share_topic" comment:"shares meeting the RSK target (used only with [rsk])"`
}

// RSKConfig is the RSK node: rskmaker polls its mnr_getWork (in hashpool run and hashpool
// gbtmaker), blkmaker submits RSK blocks to it, jobmaker applies the notify policy.
type RSKConfig struct {
	RPCAddr    string `toml:"rpc_addr" comment:"http://host:port of the RSK node's JSON-RPC (rskj with the mnr module enabled); empty = RSK off"`
	RPCUserPwd string `toml:"rpc_userpwd" comment:"user:password, if the node asks for basic auth"`
	Interval   int    `toml:"interval" comment:"seconds between mnr_getWork calls (RSK advises 2; at most 30)"`
	Notify     int    `toml:"rsk_merged_mining_notify" comment:"0 = RSK work waits for the next job, 1 = new job when the node sets notify, 2 = when the RSK block hash changes"`
}

// on reports whether RSK merged mining is configured.
func (r RSKConfig) on() bool { return r.RPCAddr != "" }

func (r RSKConfig) node() node.Options {
	return NodeConfig{RPCAddr: r.RPCAddr, RPCUserPwd: r.RPCUserPwd}.options()
}

// AuxConfig is one merged-mined aux chain: its node, fetched by an auxmaker, and the node
// blkmaker submits its blocks to.
type AuxConfig struct {
	ChainName       string `toml:"chain_name" comment:"found_nmc_blocks.chain_name and the bus key, at most 20 of [A-Za-z0-9_-.], e.g. nmc"`
	RPCAddr         string `toml:"rpc_addr" comment:"http://host:port of the aux node's JSON-RPC"`
	RPCUserPwd      string `toml:"rpc_userpwd" comment:"user:password"`
	CoinbaseAddress string `toml:"coinbase_address" comment:"aux chain address aux blocks pay (createauxblock); empty = getauxblock (node wallet)"`
	ZMQAddr         string `toml:"zmq_addr" comment:"aux node's -zmqpubhashblock endpoint; empty = polling only"`
	RPCInterval     int    `toml:"rpcinterval" comment:"seconds between aux works when no ZMQ hashblock comes; 0 = 10"`
}

// NodeConfig reaches one Bitcoin node (bitcoind or btcd).
type NodeConfig struct {
	RPCAddr    string `toml:"rpc_addr" comment:"http://host:port of the node's JSON-RPC"`
	RPCUserPwd string `toml:"rpc_userpwd" comment:"user:password (HTTP basic auth)"`
	CookieFile string `toml:"cookie_file" comment:"bitcoind's .cookie file, used when rpc_userpwd is empty"`
	ZMQAddr    string `toml:"zmq_addr" comment:"bitcoind -zmqpubhashblock endpoint, e.g. tcp://127.0.0.1:28332; empty = no ZMQ (btcd)"`
	ZMQTimeout int    `toml:"zmq_timeout" comment:"seconds of ZMQ silence before reconnecting"`
	LongPoll   bool   `toml:"longpoll" comment:"getblocktemplate long polling"`
}

// DBConfig is the pool database.
type DBConfig struct {
	DSN string `toml:"dsn" comment:"sqlite:///path/pool.db or mysql://user:pass@tcp(host:3306)/dbname; empty = SQLite in data_dir"`
}

// GbtMakerConfig is btcpool's gbtmaker section.
type GbtMakerConfig struct {
	RPCInterval int `toml:"rpcinterval" comment:"seconds between templates when nothing else triggers one"`
}

// JobMakerConfig is btcpool's job_workers entry.
type JobMakerConfig struct {
	ID               int    `toml:"id" comment:"jobmaker id 1..255, low byte of every job id"`
	PayoutAddress    string `toml:"payout_address" comment:"receives the coinbase value"`
	CoinbaseInfo     string `toml:"coinbase_info" comment:"ASCII tag in every coinbase"`
	FileLastJobTime  string `toml:"file_last_job_time" comment:"unix time of the last job attempt is written here (monitoring); empty = none"`
	BlockVersion     int32  `toml:"block_version" comment:"0 = the template's version"`
	JobInterval      int    `toml:"job_interval" comment:"seconds between jobs at the same height"`
	GbtLifeTime      int    `toml:"gbt_life_time" comment:"seconds a template with transactions is usable"`
	EmptyGbtLifeTime int    `toml:"empty_gbt_life_time" comment:"seconds a template without transactions is usable"`
	AuxNotify        int    `toml:"aux_merged_mining_notify" comment:"merged mining: 0 = aux work waits for the next job, 1 = new job when an aux height rises, 2 = when an aux hash changes"`
}

// SServerConfig is btcpool's sserver section. Difficulties are decimal numbers (btcpool wrote
// them in hex) so that test networks can use fractional ones.
type SServerConfig struct {
	ID                    int         `toml:"id" comment:"server id 1..255, top byte of every extranonce1; unique per sserver process"`
	IP                    string      `toml:"ip"`
	Port                  int         `toml:"port"`
	ReusePort             bool        `toml:"reuse_port" comment:"SO_REUSEPORT: several sserver processes share the port"`
	TCPReadTimeout        int         `toml:"tcp_read_timeout" comment:"seconds of silence before an authorized miner is dropped"`
	ShareAvgSeconds       int64       `toml:"share_avg_seconds"`
	DiffAdjustPeriod      int64       `toml:"diff_adjust_period"`
	MaxJobLifetime        int64       `toml:"max_job_lifetime"`
	MiningNotifyInterval  int64       `toml:"mining_notify_interval"`
	DefaultDifficulty     float64     `toml:"default_difficulty"`
	MinDifficulty         float64     `toml:"min_difficulty" comment:"may be fractional (e.g. 0.001) on test networks"`
	MaxDifficulty         float64     `toml:"max_difficulty"`
	VersionMask           VersionMask `toml:"version_mask" comment:"BIP310 mask miners may roll (version rolling, ASICBoost): '0x1fffe000', a TOML integer, or 0 = none"`
	ExtraNonce2Size       int         `toml:"extra_nonce2_size" comment:"4..8; agents need 8"`
	ProxyProtocol         bool        `toml:"proxy_protocol" comment:"accept a PROXY protocol v1 line first"`
	EnableSimulator       bool        `toml:"enable_simulator" comment:"accept low-difficulty shares (load tests only)"`
	LongTimeoutAgent      string      `toml:"long_timeout_agent" comment:"regexp of miner agents given a 7-day timeout"`
	ShutdownGracePeriod   int         `toml:"shutdown_grace_period" comment:"seconds over which sessions are closed on shutdown"`
	SolvedWait            int         `toml:"solved_wait" comment:"seconds shutdown waits for the bus to acknowledge solved shares (the journal keeps the rest for the next start)"`
	ProxyListen           string      `toml:"proxy_listen" comment:"extra ip:port on which a PROXY v1 header is required (for a TLS terminator on loopback); empty = none"`
	TLSListen             string      `toml:"tls_listen" comment:"stratum+ssl ip:port (TLS terminated in front of the engine, sessions as on the plain port); empty = none"`
	TLSCertFile           string      `toml:"tls_cert_file" comment:"PEM certificate chain for tls_listen (reloaded when the file changes)"`
	TLSKeyFile            string      `toml:"tls_key_file" comment:"PEM private key for tls_listen"`
	NiceHashForced        bool        `toml:"nicehash_forced" comment:"treat every session as a NiceHash client (unique job ids, NiceHash minimum difficulty)"`
	NiceHashMinDifficulty float64     `toml:"nicehash_min_difficulty" comment:"minimum difficulty of NiceHash sessions; 0 = none"`
	DevFixedDifficulty    float64     `toml:"dev_fixed_difficulty" comment:"every session gets this difficulty when > 0 (btcpool's enable_dev_mode; tests only)"`

	SV2Listen           string `toml:"sv2_listen" comment:"Stratum V2 ip:port (Noise NX; standard, extended and group channels on the same jobs and share path as stratum); empty = none"`
	SV2AuthorityKeyFile string `toml:"sv2_authority_key_file" comment:"hex secret key that signs the SV2 certificate; empty = <data_dir>/sserver/sv2-authority.key, generated at first start. Its public key (logged at start) is what miners pin"`
	SV2CertValidityDays int    `toml:"sv2_cert_validity_days" comment:"days the SV2 certificate, signed at every start, is valid"`
}

// DefaultVersionMask is the version-rolling mask offered by default: BIP320's general-purpose
// bits, what every current ASIC rolls (ckpool's default too). Without it ASICBoost is off.
const DefaultVersionMask = 0x1fffe000

// VersionMask is a BIP310 mask. In TOML it is a hex string ('0x1fffe000' or '1fffe000', as
// miners and ckpool write it) or an integer (0x1fffe000 and 536862720 are the same TOML
// integer); it is written back as the hex string.
type VersionMask uint32

// UnmarshalText reads the hex string form.
func (m *VersionMask) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || s == "" {
		return fmt.Errorf("version_mask %q: want a 32-bit hex mask such as '0x1fffe000'", b)
	}
	*m = VersionMask(v)
	return nil
}

// MarshalText writes the mask as '0x' and 8 hex digits.
func (m VersionMask) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "0x%08x", uint32(m)), nil }

// UsersConfig is btcpool's users section.
type UsersConfig struct {
	ListIDAPIURL        string `toml:"list_id_api_url" comment:"btcpool user list API; empty = accept every user (embedded ids)"`
	CaseInsensitive     bool   `toml:"case_insensitive"`
	StripUserSuffix     bool   `toml:"strip_user_suffix"`
	UserSuffixSeparator string `toml:"user_suffix_separator"`
	MaxNewPerConnection int    `toml:"max_new_per_connection" comment:"new user names one connection may register (embedded list); -1 = no bound"`
	MaxNewPerIPPerHour  int    `toml:"max_new_per_ip_per_hour" comment:"new user names one IP may register per hour; -1 = no bound"`
}

// BlkMakerConfig lists the nodes blocks go to.
type BlkMakerConfig struct {
	Nodes           []NodeConfig `toml:"nodes" comment:"every node a found block is submitted to; empty = [bitcoind]"`
	UnbuildableFile string       `toml:"unbuildable_file" comment:"solved shares that cannot become a block, one JSON line each (rebuild by hand); empty = <data_dir>/blkmaker/unbuildable-blocks.jsonl"`
	SubmitRetryMax  int          `toml:"submit_retry_max" comment:"seconds: cap of the doubling pause between submitblock calls while no node answers (a block is retried until one does)"`
	AlarmInterval   int          `toml:"alarm_interval" comment:"seconds between ERROR lines for a block no node has answered yet"`
	DrainTimeout    int          `toml:"drain_timeout" comment:"seconds blkmaker gets at shutdown to submit and record what was published (hashpool run)"`
}

// ShareLogConfig is the sharelogger's sharelog_writers entry.
type ShareLogConfig struct {
	DataDir      string `toml:"data_dir" comment:"share-log files; empty = <data_dir>/sharelog"`
	KafkaGroupID string `toml:"kafka_group_id"`
	Compression  string `toml:"compression" comment:"gzip (btcpool's format) or zstd"`
}

// SLParserConfig is btcpool's slparserhttpd section.
type SLParserConfig struct {
	IP              string `toml:"ip"`
	Port            int    `toml:"port"`
	FlushDBInterval int    `toml:"flush_db_interval"`
	AcceptStale     bool   `toml:"accept_stale"`
}

// StatsHTTPDConfig is btcpool's statshttpd section.
type StatsHTTPDConfig struct {
	IP                    string `toml:"ip"`
	Port                  int    `toml:"port"`
	FlushDBInterval       int    `toml:"flush_db_interval"`
	ExpectedOnlineWorkers int    `toml:"expected_online_workers"`
	FileLastFlushTime     string `toml:"file_last_flush_time"`
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	Enabled bool   `toml:"enabled"`
	Address string `toml:"address"`
	Port    int    `toml:"port"`
	Path    string `toml:"path"`
}

func defaultConfig() Config {
	eng := engine.NewOptions()
	t := bus.DefaultTopics()
	return Config{
		Network: "mainnet",
		Kafka:   KafkaConfig{SessionTimeout: int(kafka.DefaultSessionTimeout / time.Second), DeliveryTimeout: int(kafka.DefaultDeliveryTimeout / time.Second)},
		DataDir: "./data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Topics: TopicsConfig{RawGbt: t.RawGbt, Job: t.Job, Share: t.Share, SolvedShare: t.SolvedShare,
			CommonEvents: t.CommonEvents, AuxRawGw: bus.DefaultAuxRawGw, AuxSolvedShare: bus.DefaultAuxSolvedShare,
			RskRawGw: bus.DefaultRskRawGw, RskSolvedShare: bus.DefaultRskSolvedShare},
		Node:     NodeConfig{RPCAddr: "http://127.0.0.1:8332", ZMQTimeout: 1200, LongPoll: true},
		GbtMaker: GbtMakerConfig{RPCInterval: 10},
		JobMaker: JobMakerConfig{ID: 1, CoinbaseInfo: "/hashpool/", JobInterval: 20, GbtLifeTime: 90, EmptyGbtLifeTime: 15,
			AuxNotify: jobmaker.AuxNotifyHeight},
		SServer: SServerConfig{ID: int(eng.ServerID), IP: "0.0.0.0", Port: 3333, ReusePort: true,
			TCPReadTimeout: int(eng.TCPReadTimeout / time.Second), ShareAvgSeconds: eng.ShareAvgSeconds,
			DiffAdjustPeriod: eng.DiffAdjustPeriod, MaxJobLifetime: eng.MaxJobLifetime, MiningNotifyInterval: eng.MiningNotifyPeriod,
			DefaultDifficulty: eng.DefaultDifficulty, MinDifficulty: eng.MinDifficulty, MaxDifficulty: eng.MaxDifficulty,
			VersionMask: DefaultVersionMask, ExtraNonce2Size: eng.ExtraNonce2Size, ShutdownGracePeriod: int(eng.GracePeriod / time.Second),
			SolvedWait: int(eng.SolvedWait / time.Second), NiceHashMinDifficulty: eng.NiceHashMinDifficulty,
			SV2CertValidityDays: 365},
		Users:      UsersConfig{MaxNewPerConnection: eng.NewUsersPerConn, MaxNewPerIPPerHour: eng.NewUsersPerIP},
		BlkMaker:   BlkMakerConfig{SubmitRetryMax: 10, AlarmInterval: 60, DrainTimeout: 60},
		ShareLog:   ShareLogConfig{KafkaGroupID: "sharelog_write_btc", Compression: "gzip"},
		SLParser:   SLParserConfig{IP: "0.0.0.0", Port: 8081, FlushDBInterval: 15},
		StatsHTTPD: StatsHTTPDConfig{IP: "0.0.0.0", Port: 8080, FlushDBInterval: 15, ExpectedOnlineWorkers: 100000},
		Metrics:    MetricsConfig{Enabled: true, Address: "127.0.0.1", Port: 9100, Path: "/metrics"},
		Dashboard:  DashboardConfig{Enabled: true, MaxClients: dashboard.DefaultMaxClients},
		RSK:        RSKConfig{Interval: int(rskmaker.DefaultRPCInterval / time.Second), Notify: jobmaker.RSKNotifyFlag},

		SLParserOnce: SLParserOnce{DumpUser: -1},
	}
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

func (c *Config) topics() bus.Topics {
	t := bus.Topics{RawGbt: c.Topics.RawGbt, Job: c.Topics.Job, Share: c.Topics.Share, SolvedShare: c.Topics.SolvedShare,
		CommonEvents: c.Topics.CommonEvents}
	if len(c.Aux) > 0 { // merged mining on
		t.AuxRawGw, t.AuxSolvedShare = c.Topics.AuxRawGw, c.Topics.AuxSolvedShare
		t = t.WithAux()
	}
	if c.RSK.on() {
		t.RskRawGw, t.RskSolvedShare = c.Topics.RskRawGw, c.Topics.RskSolvedShare
		t = t.WithRSK()
	}
	return t
}

func (c *Config) rskmakerOptions() rskmaker.Options {
	return rskmaker.Options{Node: c.RSK.node(), Timing: fetchloop.Timing{RPCInterval: secs(c.RSK.Interval)},
		Topic: c.topics().RskRawGw}.WithDefaults()
}

func (a AuxConfig) node() node.Options {
	return NodeConfig{RPCAddr: a.RPCAddr, RPCUserPwd: a.RPCUserPwd}.options()
}

func (c *Config) auxmakerOptions(a AuxConfig) auxmaker.Options {
	return auxmaker.Options{ChainName: a.ChainName, Node: a.node(), CoinbaseAddress: a.CoinbaseAddress,
		Timing: fetchloop.Timing{RPCInterval: secs(a.RPCInterval), ZMQAddr: a.ZMQAddr}, Topic: c.topics().AuxRawGw}.WithDefaults()
}

func (n NodeConfig) options() node.Options {
	o := node.Options{URL: n.RPCAddr, CookieFile: n.CookieFile}
	if n.RPCUserPwd != "" {
		o.User, o.Password, _ = strings.Cut(n.RPCUserPwd, ":")
	}
	o.Validate() // fills the defaults; New reports the problems
	return o
}

func (c *Config) gbtmakerOptions() gbtmaker.Options {
	return gbtmaker.Options{Node: c.Node.options(), Timing: fetchloop.Timing{RPCInterval: secs(c.GbtMaker.RPCInterval),
		ZMQAddr: c.Node.ZMQAddr, ZMQTimeout: secs(c.Node.ZMQTimeout)}, DisableLongPoll: !c.Node.LongPoll, RawGbtTopic: c.Topics.RawGbt}.WithDefaults()
}

func (c *Config) jobmakerOptions() jobmaker.Options {
	j := c.JobMaker
	var resume time.Duration // default: the broker's fetch takes a moment
	if len(c.Kafka.Brokers) == 0 {
		resume = 100 * time.Millisecond // the in-process bus answers a poll at once
	}
	return jobmaker.Options{ResumeWait: resume, ID: j.ID, Network: c.Network, PayoutAddress: j.PayoutAddress, CoinbaseInfo: j.CoinbaseInfo,
		BlockVersion: j.BlockVersion, JobInterval: secs(j.JobInterval), GbtLifeTime: secs(j.GbtLifeTime),
		EmptyGbtLifeTime: secs(j.EmptyGbtLifeTime), RawGbtTopic: c.Topics.RawGbt, JobTopic: c.Topics.Job,
		LastJobTimeFile: j.FileLastJobTime, AuxRawGwTopic: c.topics().AuxRawGw, AuxNotifyPolicy: j.AuxNotify,
		RSKRawGwTopic: c.topics().RskRawGw, RSKNotifyPolicy: c.RSK.Notify}.WithDefaults()
}

func (c *Config) engineOptions() (engine.Options, error) {
	s := c.SServer
	o := engine.NewOptions()
	if s.ID < 1 || s.ID > 255 {
		return o, fmt.Errorf("sserver.id %d: want 1..255", s.ID)
	}
	o.ServerID = uint8(s.ID)
	o.Listen = fmt.Sprintf("%s:%d", s.IP, s.Port)
	o.ReusePort = s.ReusePort && s.Port != 0
	o.TCPReadTimeout = secs(s.TCPReadTimeout)
	o.ShareAvgSeconds = s.ShareAvgSeconds
	o.DiffAdjustPeriod = s.DiffAdjustPeriod
	o.MaxJobLifetime = s.MaxJobLifetime
	o.MiningNotifyPeriod = s.MiningNotifyInterval
	o.DefaultDifficulty = s.DefaultDifficulty
	o.MinDifficulty = s.MinDifficulty
	o.MaxDifficulty = math.Min(s.MaxDifficulty, math.Ldexp(1, 62))
	o.VersionMask = uint32(s.VersionMask)
	o.ExtraNonce2Size = s.ExtraNonce2Size
	o.ProxyProtocol = s.ProxyProtocol
	o.Simulator = s.EnableSimulator
	o.LongTimeoutAgent = s.LongTimeoutAgent
	o.GracePeriod = secs(s.ShutdownGracePeriod)
	o.SolvedWait = secs(s.SolvedWait)
	o.ProxyListen = s.ProxyListen
	o.NiceHashForced = s.NiceHashForced
	o.NiceHashMinDifficulty = s.NiceHashMinDifficulty
	o.DevFixedDifficulty = s.DevFixedDifficulty
	o.NewUsersPerConn = c.Users.MaxNewPerConnection
	o.NewUsersPerIP = c.Users.MaxNewPerIPPerHour
	o.Names = engine.NameRules{CaseInsensitive: c.Users.CaseInsensitive, StripSuffix: c.Users.StripUserSuffix,
		SuffixSeparator: c.Users.UserSuffixSeparator}
	o.Topics = c.topics()
	o.DataDir = filepath.Join(c.DataDir, "sserver")
	if s.SV2Listen != "" {
		o.SV2Listen = s.SV2Listen
		r, pub, err := c.sv2Responder(o.DataDir, time.Now())
		if err != nil {
			return o, err
		}
		o.SV2Responder, c.sv2Authority = r, pub
	}
	return o, o.Validate()
}

// sv2AuthorityFile is the SV2 authority key's file: sv2_authority_key_file, or one in the
// sserver data directory.
func (c *Config) sv2AuthorityFile(dataDir string) string {
	if c.SServer.SV2AuthorityKeyFile != "" {
		return c.SServer.SV2AuthorityKeyFile
	}
	return filepath.Join(dataDir, "sv2-authority.key")
}

// sv2Responder loads the SV2 authority secret key (generating and persisting it, 0600, when
// the default file does not exist yet), signs a certificate for a static key made for this
// process (valid from an hour ago for sv2_cert_validity_days), and returns the Noise
// responder and the authority's public key as miners configure it.
func (c *Config) sv2Responder(dataDir string, now time.Time) (*noise.Responder, string, error) {
	days := c.SServer.SV2CertValidityDays
	if days < 1 || days > 3650 {
		return nil, "", fmt.Errorf("sserver.sv2_cert_validity_days %d: want 1..3650", days)
	}
	file := c.sv2AuthorityFile(dataDir)
	raw, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist) && c.SServer.SV2AuthorityKeyFile == "":
		k, gerr := noise.GenerateKey()
		if gerr != nil {
			return nil, "", gerr
		}
		raw = []byte(hex.EncodeToString(k.Serialize()) + "\n")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return nil, "", fmt.Errorf("sv2 authority key: %w", err)
		}
		if err := writeFileSync(file, raw); err != nil {
			return nil, "", fmt.Errorf("sv2 authority key: %w", err)
		}
	case err != nil:
		return nil, "", fmt.Errorf("sserver.sv2_authority_key_file: %w", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) != 32 {
		return nil, "", fmt.Errorf("sv2 authority key %s: want 64 hex digits (a secp256k1 secret key)", file)
	}
	authority, _ := btcec.PrivKeyFromBytes(b)
	static, err := noise.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	from, until := now.Add(-time.Hour), now.Add(time.Duration(days)*24*time.Hour)
	cert, err := noise.SignCertificate(authority, static, 0, uint32(from.Unix()), uint32(until.Unix()))
	if err != nil {
		return nil, "", fmt.Errorf("sv2 certificate: %w", err)
	}
	r, err := noise.NewResponder(static, cert, nil)
	if err != nil {
		return nil, "", err
	}
	return r, noise.FormatAuthorityKey(noise.XOnly(authority)), nil
}

// writeFileSync creates file with data (0600, never replacing one) and fsyncs it.
func writeFileSync(file string, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *Config) blkmakerOptions() blockmaker.Options {
	nodes := c.BlkMaker.Nodes
	if len(nodes) == 0 {
		nodes = []NodeConfig{c.Node}
	}
	unbuildable := c.BlkMaker.UnbuildableFile
	if unbuildable == "" {
		unbuildable = filepath.Join(c.DataDir, "blkmaker", "unbuildable-blocks.jsonl")
	}
	o := blockmaker.Options{Topics: c.topics(), UnbuildableFile: unbuildable, MaxRetryDelay: secs(c.BlkMaker.SubmitRetryMax),
		AlarmInterval: secs(c.BlkMaker.AlarmInterval)}
	for _, n := range nodes {
		o.Nodes = append(o.Nodes, n.options())
	}
	if len(c.Aux) > 0 {
		o.AuxNodes = make(map[string]node.Options, len(c.Aux))
		for _, a := range c.Aux {
			o.AuxNodes[a.ChainName] = a.node()
		}
	}
	if c.RSK.on() {
		o.RSK, o.RSKNode = true, c.RSK.node()
	}
	return o
}

func (c *Config) shareLogDir() string {
	if c.ShareLog.DataDir != "" {
		return c.ShareLog.DataDir
	}
	return filepath.Join(c.DataDir, "sharelog")
}

func (c *Config) statshttpdOptions() statshttpd.Options {
	s := c.StatsHTTPD // its HTTP API is served by addStatsHTTP, next to the dashboard
	return statshttpd.Options{Topics: c.topics(), ExpectedOnlineWorkers: s.ExpectedOnlineWorkers,
		FlushInterval: secs(s.FlushDBInterval), FileLastFlushTime: s.FileLastFlushTime}
}

// tlsFrontOptions returns the TLS front's options when tls_listen is set (nil otherwise). The
// front terminates TLS and hands each session to the engine on a loopback listener that
// requires a PROXY v1 header (proxy_listen; a free loopback port when not set), so the engine
// sees the miner's own address and the public plain port never trusts a PROXY line.
func (c *Config) tlsFrontOptions(eng *engine.Options) (*tlsfront.Options, error) {
	s := c.SServer
	if s.TLSListen == "" {
		return nil, nil
	}
	if eng.ProxyListen == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("sserver.tls_listen: no loopback port for the TLS front: %w", err)
		}
		eng.ProxyListen = ln.Addr().String()
		ln.Close()
	}
	o := tlsfront.NewOptions()
	o.Listen, o.Backend, o.CertFile, o.KeyFile = s.TLSListen, eng.ProxyListen, s.TLSCertFile, s.TLSKeyFile
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("sserver.tls_listen: %w", err)
	}
	if err := eng.Validate(); err != nil {
		return nil, err
	}
	return &o, nil
}

// subsidyInterval is the network's halving interval in blocks.
func subsidyInterval(network string) int32 {
	if network == "regtest" {
		return 150
	}
	return 210000
}

func (c *Config) slparserOptions(open slparser.OpenFunc, suffix string) slparser.Options {
	s := c.SLParser
	addr := ""
	if s.Port > 0 {
		addr = fmt.Sprintf("%s:%d", s.IP, s.Port)
	}
	interval := subsidyInterval(c.Network)
	return slparser.Options{DataDir: c.shareLogDir(), Open: open, FileSuffix: suffix, ListenAddr: addr,
		FlushInterval: secs(s.FlushDBInterval), AcceptStale: s.AcceptStale, SubsidyInterval: interval}
}

func (c *Config) dsn() string {
	if c.DB.DSN != "" {
		return c.DB.DSN
	}
	return "sqlite://" + filepath.Join(c.DataDir, "pool.db")
}

// validate checks what no component checks for itself.
func (c *Config) validate() error {
	var errs []error
	switch c.Network {
	case "mainnet", "testnet3", "testnet4", "signet", "regtest":
	default:
		errs = append(errs, fmt.Errorf("network %q: want mainnet, testnet3, testnet4, signet or regtest", c.Network))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	seen := map[string]bool{}
	for i, a := range c.Aux {
		switch {
		case a.ChainName == "":
			errs = append(errs, fmt.Errorf("aux %d: chain_name is empty", i))
		case seen[a.ChainName]:
			errs = append(errs, fmt.Errorf("aux %d: chain_name %q given twice", i, a.ChainName))
		}
		seen[a.ChainName] = true
		if a.RPCAddr == "" {
			errs = append(errs, fmt.Errorf("aux %q: rpc_addr is empty", a.ChainName))
		}
	}
	if c.Runtime.MemoryLimitMiB < 0 {
		errs = append(errs, fmt.Errorf("runtime.memory_limit_mib %d: want 0 (none) or a size in MiB", c.Runtime.MemoryLimitMiB))
	}
	if c.Debug.PprofListen != "" {
		if _, err := c.Debug.pprofAddr(); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.ShareLog.Compression {
	case "gzip", "zstd":
	default:
		errs = append(errs, fmt.Errorf("sharelog.compression %q: want gzip or zstd", c.ShareLog.Compression))
	}
	return errors.Join(errs...)
}
