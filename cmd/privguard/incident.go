package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/metrics"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/journal"
)

// incidentInterval is how often serve checks the incidents' clocks and sends the
// subjects' notices waiting.
const incidentInterval = 30 * time.Second

// openIncidents opens the incident register in the backend's journal: subjects named by
// the admin trail's keyed hash, the controller's DPO as the notices' contact, the
// subjects' notices through the outbox notifier.
func openIncidents(cfg *config.File, be *backend, t *trail.Trail, notifier dsar.Notifier, log *slog.Logger) (*incident.Register, error) {
	c := incidentConfig(cfg, be.Journal)
	c.Pseudonym, c.Logger = t.Subject, log
	if n, ok := notifier.(incident.Notifier); ok {
		c.Notifier = n
	}
	if c.Contact.Contact == "" {
		log.Warn("controller.dpo.contact (or controller.contact) is not set: incident notices, which must name the DPO's contact, will be refused")
	}
	return incident.Open(c)
}

// incidentConfig is the register's configuration from the file: its clocks (regimes,
// CII) and the notices' contact (the controller's DPO), as serve and the commands read it.
func incidentConfig(cfg *config.File, store journal.Store) incident.Config {
	c := incident.Config{Store: store, CII: cfg.Incidents.CIIOperator,
		Contact: incident.Contact{Controller: cfg.Controller.Name, DPO: cfg.Controller.DPO.Name, Contact: cfg.Controller.DPO.Contact}}
	if c.Contact.Contact == "" {
		c.Contact.Contact = cfg.Controller.Contact
	}
	for _, r := range cfg.Incidents.Regimes {
		c.Regimes = append(c.Regimes, privguard.Regime(r))
	}
	if len(c.Regimes) == 0 {
		c.Regimes = []privguard.Regime{privguard.Regime(cfg.Regime)}
	}
	return c
}

// incidentMetrics registers the register's clocks as gauges, read from Run's last round.
func incidentMetrics(reg prometheus.Registerer, r *incident.Register) error {
	s := func(f func(incident.Summary) float64) func() float64 { return func() float64 { return f(r.Summary()) } }
	return errors.Join(
		metrics.Gauge(reg, "privguard_incident_deadline_seconds", "Seconds to the nearest incident notice deadline still waiting for its notice (negative when past, +Inf for none).",
			s(func(x incident.Summary) float64 { return x.NextDeadline })),
		metrics.Gauge(reg, "privguard_incident_clocks_overdue", "Incident notices whose deadline passed without the notice.",
			s(func(x incident.Summary) float64 { return float64(x.Overdue) })),
		metrics.Gauge(reg, "privguard_incident_clocks_alerting", "Incident notices within 4 hours of their deadline, or due without undue delay.",
			s(func(x incident.Summary) float64 { return float64(x.Alerting) })),
		metrics.Gauge(reg, "privguard_incidents_open", "Open incidents in the register.",
			s(func(x incident.Summary) float64 { return float64(x.Open) })),
		metrics.Gauge(reg, "privguard_incidents_assessment_due", "Open incidents whose severity or risk is not assessed (the strictest clocks run).",
			s(func(x incident.Summary) float64 { return float64(x.AssessmentDue) })),
		metrics.Gauge(reg, "privguard_incident_notices_pending", "Notices to affected subjects released and not sent yet.",
			s(func(x incident.Summary) float64 { return float64(x.Pending) })),
	)
}
