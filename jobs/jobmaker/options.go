package jobmaker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/txscript/v2"
)

// btcpool's defaults (src/bitcoin/cfg/jobmaker.cfg).
const (
	DefaultJobInterval      = 20 * time.Second
	DefaultGbtLifeTime      = 90 * time.Second
	DefaultEmptyGbtLifeTime = 15 * time.Second
	DefaultRawGbtTopic      = "BtcRawGbt"
	DefaultJobTopic         = "BtcJob"
	DefaultNetwork          = "mainnet"
)

// DefaultResumeWait is hashpool's bound on reading the last job at start
// (Options.ResumeWait); btcpool has none and starts ids from the clock.
const DefaultResumeWait = 2 * time.Second

// Options configure a JobMaker. The zero value of a field means its default
// (see WithDefaults); ID and PayoutAddress have none.
type Options struct {
	// ID is the jobmaker's server id, 1..255, the low byte of every job id.
	// btcpool's 0 (ask ZooKeeper) is not supported.
	ID int
	// Network is the chain the payout address belongs to: "mainnet",
	// "testnet3", "testnet4", "signet" or "regtest".
	Network string
	// PayoutAddress receives the whole coinbase value.
	PayoutAddress string
	// CoinbaseInfo is written verbatim into every coinbase scriptSig, at
	// most MaxCoinbaseInfo bytes.
	CoinbaseInfo string
	// BlockVersion, when not 0, replaces the template's block version.
	BlockVersion int32
	// JobInterval is the longest time between two jobs (btcpool
	// job_interval, 20 s); it also sets the height-regression window
	// (twice this). Whole seconds.
	JobInterval time.Duration
	// GbtLifeTime is how long a template with transactions stays usable
	// (gbt_life_time, 90 s). Whole seconds.
	GbtLifeTime time.Duration
	// EmptyGbtLifeTime is how long a template without transactions stays
	// usable (empty_gbt_life_time, 15 s; btcpool advises at least 10 s).
	// Whole seconds.
	EmptyGbtLifeTime time.Duration
	// RawGbtTopic is the topic templates are read from (BtcRawGbt).
	RawGbtTopic string
	// JobTopic is the topic jobs are published to (BtcJob).
	JobTopic string
	// AuxRawGwTopic, when set, is the topic aux chains' work is read from (btcpool
	// auxpow_gw_topic, "AuxRawGw"); empty means merged mining is off.
	AuxRawGwTopic string
	// AuxNotifyPolicy is btcpool's aux_merged_mining_notify: AuxNotifyNever (0, the zero
	// value), AuxNotifyHeight (1) or AuxNotifyHash (2).
	AuxNotifyPolicy int
	// RSKRawGwTopic, when set, is the topic RSK work is read from (btcpool rsk_rawgw_topic,
	// "RskRawGw"); empty means RSK merged mining is off.
	RSKRawGwTopic string
	// RSKNotifyPolicy is btcpool's rsk_merged_mining_notify: RSKNotifyNever (0, the zero
	// value), RSKNotifyFlag (1: the node's notify flag) or RSKNotifyHash (2).
	RSKNotifyPolicy int
	// ResumeWait bounds how long Run looks for the last job already on
	// JobTopic before it makes its first one (default 2 s): its id seeds the
	// id generator, so a jobmaker restarted within the second of its last job
	// never repeats an id or makes one lower than a job the sservers hold.
	// On a topic with no job the wait runs out and ids start from the clock.
	// The in-process bus answers at once, so `hashpool run` sets it short.
	ResumeWait time.Duration
	// LastJobTimeFile, when set, gets the unix time written after every
	// attempt to make a job (btcpool file_last_job_time), for monitoring.
	LastJobTimeFile string
	// Logger receives the jobmaker's logs; nil means silent.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
}

// WithDefaults returns a copy of o with every zero field that has a default
// set to it.
func (o Options) WithDefaults() Options {
	if o.Network == "" {
		o.Network = DefaultNetwork
	}
	if o.JobInterval == 0 {
		o.JobInterval = DefaultJobInterval
	}
	if o.GbtLifeTime == 0 {
		o.GbtLifeTime = DefaultGbtLifeTime
	}
	if o.EmptyGbtLifeTime == 0 {
		o.EmptyGbtLifeTime = DefaultEmptyGbtLifeTime
	}
	if o.RawGbtTopic == "" {
		o.RawGbtTopic = DefaultRawGbtTopic
	}
	if o.JobTopic == "" {
		o.JobTopic = DefaultJobTopic
	}
	if o.ResumeWait == 0 {
		o.ResumeWait = DefaultResumeWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// NetworkParams returns the chain parameters for a network name accepted in
// Options.Network.
func NetworkParams(name string) (*chaincfg.Params, error) {
	switch name {
	case "mainnet":
		return &chaincfg.MainNetParams, nil
	case "testnet3":
		return &chaincfg.TestNet3Params, nil
	case "testnet4":
		return &chaincfg.TestNet4Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	}
	return nil, fmt.Errorf("unknown network %q (want mainnet, testnet3, testnet4, signet or regtest)", name)
}

// PayoutScript returns the output script paying to addr on network.
func PayoutScript(network, addr string) ([]byte, error) {
	params, err := NetworkParams(network)
	if err != nil {
		return nil, err
	}
	a, err := address.DecodeAddress(addr, params)
	if err != nil {
		return nil, fmt.Errorf("payout address %q: %w", addr, err)
	}
	if !a.IsForNet(params) {
		return nil, fmt.Errorf("payout address %q is not a %s address", addr, network)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, fmt.Errorf("payout address %q: %w", addr, err)
	}
	return script, nil
}

// Validate reports every problem with o at once. Call it on the result of
// WithDefaults.
func (o Options) Validate() error {
	var errs []error
	if o.ID < 1 || o.ID > 255 {
		errs = append(errs, fmt.Errorf("id %d: want a server id 1..255", o.ID))
	}
	if _, err := NetworkParams(o.Network); err != nil {
		errs = append(errs, err)
	} else if o.PayoutAddress == "" {
		errs = append(errs, errors.New("payout_address is empty"))
	} else if _, err := PayoutScript(o.Network, o.PayoutAddress); err != nil {
		errs = append(errs, err)
	}
	if len(o.CoinbaseInfo) > MaxCoinbaseInfo {
		errs = append(errs, fmt.Errorf("coinbase_info is %d bytes, at most %d fit in the scriptSig", len(o.CoinbaseInfo), MaxCoinbaseInfo))
	} else if o.AuxRawGwTopic != "" && len(o.CoinbaseInfo) > MaxCoinbaseInfoAux {
		errs = append(errs, fmt.Errorf("coinbase_info is %d bytes, at most %d fit in the scriptSig beside the merged-mining commitment", len(o.CoinbaseInfo), MaxCoinbaseInfoAux))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"job_interval", o.JobInterval},
		{"gbt_life_time", o.GbtLifeTime},
		{"empty_gbt_life_time", o.EmptyGbtLifeTime},
	} {
		if d.v < time.Second || d.v%time.Second != 0 || d.v > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%s %v: want whole seconds between 1s and 24h", d.name, d.v))
		}
	}
	if o.RawGbtTopic == "" {
		errs = append(errs, errors.New("rawgbt_topic is empty"))
	}
	if o.JobTopic == "" {
		errs = append(errs, errors.New("job_topic is empty"))
	}
	if o.AuxNotifyPolicy < AuxNotifyNever || o.AuxNotifyPolicy > AuxNotifyHash {
		errs = append(errs, fmt.Errorf("aux_merged_mining_notify %d: want 0, 1 or 2", o.AuxNotifyPolicy))
	}
	if o.RSKNotifyPolicy < RSKNotifyNever || o.RSKNotifyPolicy > RSKNotifyHash {
		errs = append(errs, fmt.Errorf("rsk_merged_mining_notify %d: want 0, 1 or 2", o.RSKNotifyPolicy))
	}
	if len(errs) > 0 {
		return fmt.Errorf("jobmaker options: %w", errors.Join(errs...))
	}
	return nil
}
