package main

import (
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/sharelog/logger"
)

// addShareLogger adds the sharelogger: share topic → daily share-log files.
func (p *pool) addShareLogger() error {
	c := logfile.Gzip
	if p.cfg.ShareLog.Compression == "zstd" {
		c = logfile.Zstd
	}
	o := logger.Options{Dir: p.cfg.shareLogDir(), Compression: c, Topic: p.cfg.Topics.Share,
		Group: p.cfg.ShareLog.KafkaGroupID, Logger: p.log.With("component", "sharelogger")}
	l, err := logger.New(p.bus, o)
	if err != nil {
		return err
	}
	p.add("sharelogger", l.Run)
	return nil
}
