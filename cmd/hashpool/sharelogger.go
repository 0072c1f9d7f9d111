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
		// Kafka and the in-process bus (a log in <data_dir>/bus) both keep offsets across restarts.
		DurableOffsets: true}
	l, err := logger.New(p.bus, o)
	if err != nil {
		return nil, err
	}
	p.addDrainable("sharelogger", l.Run, l.Drain)
	return l, nil
}
