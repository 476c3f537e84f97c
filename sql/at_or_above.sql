-- Elever på eller över varje gemensam frånvaronivå (10, 15, 20, 50 %): antal och andel.
-- Definition: elever vars frånvaro (giltig + ogiltig) delad med erbjuden tid, avrundad nedåt
-- till hel procent, är minst nivån; räknat med at_or_above ur områdets histogram pct_total
-- (skolornas histogram summerade med hist_sum). Andelen
-- är av alla elever med erbjuden tid i området och fönstret.
-- Unit: pupils, and percent of pupils. Policy: policies/shared.toml [[levels]].
WITH sums AS (
  SELECT area_type, area_code, period, "window", sum(students) AS students,
         hist_sum(pct_total) AS pct_total
  FROM area_attendance
  GROUP BY area_type, area_code, period, "window"
)
SELECT a.area_type, a.area_code, a.period, a."window",
       l.level_id, l.level_name, l.percent, l.level_order,
       a.students,
       at_or_above(a.pct_total, l.percent) AS pupils,
       100.0 * at_or_above(a.pct_total, l.percent) / nullif(a.students, 0) AS share_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM sums a CROSS JOIN levels l CROSS JOIN definition d
