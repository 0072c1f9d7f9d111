package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashpool/hashpool/bus/mem"
)

// registerBusMetrics exports the in-process bus's disk log: what it wrote, its fsyncs, its
// errors, and per topic what it retains on disk and in memory.
func registerBusMetrics(reg *prometheus.Registry, b *mem.Bus) {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hashpool_bus_"+name, help, labels, nil)
	}
	written := desc("records_written_total", "Records written to the bus's segment files.")
	bytes := desc("written_bytes_total", "Bytes written to the bus's segment files.")
	fsyncs := desc("fsyncs_total", "fsync calls on segment files (one per group commit).")
	fsyncSecs := desc("fsync_seconds_total", "Time spent in those fsyncs.")
	errs := desc("write_errors_total", "Batches failed by a write or fsync error (their records were not acknowledged).")
	retained := desc("retained_bytes", "Segment file bytes a topic keeps on disk.", "topic")
	segments := desc("segments", "Segment files of a topic.", "topic")
	cached := desc("cached_bytes", "Record bytes a topic keeps in memory.", "topic")
	dropped := desc("cache_dropped_total", "Records the bus's memory bound dropped before every open consumer took them.", "topic")
	end := desc("end_offset", "Offset the next record of a topic gets.", "topic")
	oldest := desc("oldest_offset", "Oldest offset a topic retains.", "topic")
	reg.MustRegister(collectorFunc{desc: written, collect: func(ch chan<- prometheus.Metric) {
		st := b.Stats()
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
		}
		counter(written, float64(st.RecordsWritten))
		counter(bytes, float64(st.BytesWritten))
		counter(fsyncs, float64(st.Fsyncs))
		counter(fsyncSecs, st.FsyncTime.Seconds())
		counter(errs, float64(st.WriteErrors))
		for _, t := range st.Topics {
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, t.Name)
			}
			gauge(retained, float64(t.RetainedBytes))
			gauge(segments, float64(t.Segments))
			gauge(cached, float64(t.CachedBytes))
			ch <- prometheus.MustNewConstMetric(dropped, prometheus.CounterValue, float64(t.CacheDropped), t.Name)
			gauge(end, float64(t.End))
			gauge(oldest, float64(t.Oldest))
		}
	}, others: []*prometheus.Desc{bytes, fsyncs, fsyncSecs, errs, retained, segments, cached, dropped, end, oldest}})
}
