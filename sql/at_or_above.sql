-- Elever på eller över varje gemensam frånvaronivå (10, 15, 20, 50 %): antal och andel.
-- Definition: elever vars frånvaro (giltig + ogiltig) delad med erbjuden tid, avrundad nedåt
-- till hel procent, är minst nivån; räknat med at_or_above ur områdets histogram pct_total
-- (skolornas histogram summerade med hist_sum). Andelen
-- är av alla elever med erbjuden tid i området och fönstret.
-- Unit: pupils, and percent of pupils. Policy: policies/shared.toml [[levels]].
-- Counted per school (school_steps: the same histograms, one school at a time) and added up
-- over each area's schools, which gives the count of the area's summed histogram.
WITH sums AS (
  SELECT t.area_type,
         area_code(t.area_type, s.school_unit_code, s.municipality_code, s.county_code) AS area_code,
         s.period, s."window", l.level_id, l.level_name, l.percent, l.level_order,
         sum(s.students) AS students, sum(s.pupils) AS pupils
  FROM area_types t
  CROSS JOIN school_steps s
  JOIN levels l ON s.measure = 'percent' AND s.band = l.percent
  GROUP BY t.area_type,
           area_code(t.area_type, s.school_unit_code, s.municipality_code, s.county_code),
           s.period, s."window", l.level_id, l.level_name, l.percent, l.level_order
)
SELECT a.area_type, a.area_code, a.period, a."window",
       a.level_id, a.level_name, a.percent, a.level_order,
       a.students, a.pupils,
       100.0 * a.pupils / nullif(a.students, 0) AS share_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM sums a CROSS JOIN definition d
