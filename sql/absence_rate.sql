-- Frånvaro som andel av erbjuden undervisningstid: total, giltig och ogiltig (procent).
-- Definition: summan av frånvarominuter delad med summan av erbjudna minuter i området och
-- fönstret, enligt den gemensamma definitionen (frånvaro = giltig + ogiltig). Aldrig ett
-- medelvärde av skolors procentsatser.
-- Unit: percent of offered minutes. Policy: policies/shared.toml.
SELECT a.area_type, a.area_code, a.period, a."window",
       count(DISTINCT a.school_unit_code) AS schools,
       sum(a.students) AS students,
       sum(a.offered_minutes) AS offered_minutes,
       sum(a.valid_absence_minutes + a.invalid_absence_minutes) AS absence_minutes,
       100.0 * sum(a.valid_absence_minutes + a.invalid_absence_minutes) / nullif(sum(a.offered_minutes), 0) AS absence_pct,
       100.0 * sum(a.valid_absence_minutes) / nullif(sum(a.offered_minutes), 0) AS valid_absence_pct,
       100.0 * sum(a.invalid_absence_minutes) / nullif(sum(a.offered_minutes), 0) AS invalid_absence_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM area_attendance a CROSS JOIN definition d
GROUP BY a.area_type, a.area_code, a.period, a."window", d.definition_id, d.definition_hash, d.data_version
