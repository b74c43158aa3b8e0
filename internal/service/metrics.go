package service

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/queue"
)

// metrics are the service's Prometheus metrics, on a registry it owns
// (or the one Config.Metrics gives), never the global one.
type metrics struct {
	reg    *prometheus.Registry
	builds *prometheus.CounterVec   // by outcome
	phases *prometheus.HistogramVec // by phase
	http   *prometheus.HistogramVec // by route and code
}

func newMetrics(reg *prometheus.Registry, q *queue.Queue) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{
		reg: reg,
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_builds_total", Help: "Builds that ended, by outcome.",
		}, []string{"outcome"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_build_phase_seconds", Help: "How long each phase of a build took.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"phase"}),
		http: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_api_request_duration_seconds", Help: "Build API requests, by route and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "code"}),
	}
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_build_queue_depth", Help: "Builds waiting for a worker.",
	}, func() float64 { return float64(q.Stats().Waiting) })
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_builds_running", Help: "Builds running now.",
	}, func() float64 { return float64(q.Stats().Running) })
	for _, c := range []prometheus.Collector{m.builds, m.phases, m.http, waiting, running} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the build service's metrics: %w", err)
		}
	}
	return m, nil
}

// observe records a finished build's outcome and phases.
func (m *metrics) observe(state buildrecord.State, p buildrecord.Phases) {
	m.builds.WithLabelValues(string(state)).Inc()
	for phase, d := range map[string]buildrecord.Duration{
		"queue_wait": p.QueueWait, "source_fetch": p.SourceFetch, "compile": p.Compile,
		"layer": p.Layer, "push": p.Push, "sign": p.Sign,
	} {
		if d > 0 {
			m.phases.WithLabelValues(phase).Observe(time.Duration(d).Seconds())
		}
	}
}

// MetricsHandler serves the service's metrics for /metrics.
func (s *Service) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{Registry: s.m.reg})
}

// statusWriter remembers the status code for the request metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush for log streams.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (m *metrics) timed(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.http.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}
