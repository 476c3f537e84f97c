-- Elever på eller över varje gemensam frånvaronivå (10, 15, 20, 50 %): antal och andel.
-- Definition: elever vars frånvaro (giltig + ogiltig) delad med erbjuden tid, avrundad nedåt
-- till hel procent, är minst nivån; räknat ur histogrammet pct_total med at_or_above. Andelen
-- är av alla elever med erbjuden tid i området och fönstret.
-- Unit: pupils, and percent of pupils. Policy: policies/shared.toml [[levels]].
SELECT a.area_type, a.area_code, a.period, a."window",
       l.level_id, l.level_name, l.percent, l.level_order,
       sum(a.students) AS students,
       sum(at_or_above(a.pct_total, l.percent)) AS pupils,
       100.0 * sum(at_or_above(a.pct_total, l.percent)) / nullif(sum(a.students), 0) AS share_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM area_attendance a CROSS JOIN levels l CROSS JOIN definition d
GROUP BY a.area_type, a.area_code, a.period, a."window",
         l.level_id, l.level_name, l.percent, l.level_order,
         d.definition_id, d.definition_hash, d.data_version
