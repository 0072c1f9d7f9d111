// Command hashpool runs the pool: every component in one process (`hashpool run`) or one
// component per process on Kafka, like btcpool's binaries.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashpool/hashpool/internal/config"
)

const usage = `hashpool — Bitcoin mining pool back end (btcpool-compatible)

Usage:
  hashpool <command> [flags]

Commands:
  run          every component in one process: gbtmaker, jobmaker, sserver, blkmaker,
               sharelogger, slparser, statshttpd (in-process bus unless --kafka is given)
  gbtmaker     block templates from the node → RawGbt topic; with [rsk], RSK work
               (mnr_getWork) → RskRawGw topic
  auxmaker     merged mining: each [[aux]] chain's work (createauxblock) → AuxRawGw topic
  jobmaker     RawGbt (+ AuxRawGw) → stratum jobs (Job topic)
  sserver      the stratum server
  blkmaker     solved shares → blocks on every node → found_blocks
  sharelogger  share topic → daily share-log files
  slparser     share-log files → stats_* tables and HTTP API
  statshttpd   share topic → live worker statistics, mining_workers and HTTP API
  config       print the effective configuration (defaults + file + flags) as TOML

Every command takes -c <file.toml>; "hashpool <command> -h" lists its flags.
The configuration keys are documented in docs/CONFIG.md.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runCommand(ctx, os.Args[1], os.Args[2:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "hashpool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// summaries say what each command does, for its -h.
var summaries = map[string]string{
	"run":         "Runs every component in one process: gbtmaker, jobmaker, sserver, blkmaker, sharelogger,\nslparser and statshttpd, on the in-process bus (or Kafka with -kafka) with SQLite in -data-dir.",
	"gbtmaker":    "Fetches block templates from the node (ZMQ hashblock, long polling, every rpcinterval)\nand publishes them as RawGbt (btcpool's gbtmaker); with [rsk], also RSK work (mnr_getWork)\nas RskRawGw (btcpool's gwmaker).",
	"auxmaker":    "Fetches each [[aux]] chain's merged-mining work (createauxblock or getauxblock, on ZMQ\nhashblock and every rpcinterval) and publishes it as AuxRawGw (btcpool's nmcauxmaker).",
	"jobmaker":    "Turns RawGbt templates into stratum jobs with btcpool's rules (btcpool's jobmaker).",
	"sserver":     "The stratum server for miners and BtcAgent farms (btcpool's sserver).",
	"blkmaker":    "Rebuilds blocks from solved shares, submits them to every node, records found_blocks.",
	"sharelogger": "Writes the share topic into daily share-log files (btcpool's format).",
	"slparser":    "Aggregates share-log files into the stats_* tables and serves /share_stats.",
	"statshttpd":  "Live worker statistics from the share topic: mining_workers and /worker_status.",
	"config":      "Prints the effective configuration (defaults, then the file, then flags) as TOML.",
}

// command is one subcommand: it gets the parsed configuration and a logger.
type command func(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error

var commands = map[string]command{
	"run":         cmdRun,
	"gbtmaker":    cmdGbtMaker,
	"auxmaker":    cmdAuxMaker,
	"jobmaker":    cmdJobMaker,
	"sserver":     cmdSServer,
	"blkmaker":    cmdBlkMaker,
	"sharelogger": cmdShareLogger,
	"slparser":    cmdSLParser,
	"statshttpd":  cmdStatsHTTPD,
}

// runCommand parses the flags of one subcommand, loads the configuration and runs it.
func runCommand(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	cmd, ok := commands[name]
	if name != "config" && !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", name)
	}
	cfg := defaultConfig()
	fs := flag.NewFlagSet("hashpool "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "configuration file (TOML)")
	fl := bindFlags(fs, name)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hashpool %s [-c file.toml] [flags]\n\n%s\n\nFlags (override the file):\n", name, summaries[name])
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nConfiguration file keys, with their defaults:\n\n")
		def := defaultConfig()
		config.Encode(stderr, &def)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *file != "" {
		if err := config.LoadFile(*file, &cfg); err != nil {
			return err
		}
	}
	fl.apply(fs, &cfg)
	if err := cfg.validate(); err != nil {
		return err
	}
	if name == "config" {
		return config.Encode(stdout, &cfg)
	}
	log, err := config.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	return cmd(ctx, &cfg, log, stdout)
}
