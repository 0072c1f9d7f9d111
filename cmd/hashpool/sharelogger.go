package main

import (
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/sharelog/logger"
)

// addShareLogger adds the sharelogger: share topic → daily share-log files.
func (p *pool) addShareLogger() error {
	_, err := p.addDrainableShareLogger()
	return err
}

// addDrainableShareLogger adds the sharelogger and returns it, so that an ordered shutdown
// can call its Drain after stopping sserver and wait for its task to return.
func (p *pool) addDrainableShareLogger() (*logger.Logger, error) {
	c := logfile.Gzip
	if p.cfg.ShareLog.Compression == "zstd" {
		c = logfile.Zstd
	}
	o := logger.Options{Dir: p.cfg.shareLogDir(), Compression: c, Topic: p.cfg.Topics.Share,
		Group: p.cfg.ShareLog.KafkaGroupID, Logger: p.log.With("component", "sharelogger"),
		// Kafka keeps offsets across restarts; the in-process bus starts again at 0.
		DurableOffsets: len(p.cfg.Kafka.Brokers) > 0}
	l, err := logger.New(p.bus, o)
	if err != nil {
		return nil, err
	}
	p.add("sharelogger", l.Run)
	return l, nil
}
