-- Pupils at or above every band counted anywhere, per school unit, period and window: each band
-- a staircase in `local_steps` uses (in the step's own window) and each shared level (`levels`,
-- in every window), from the school's summed histograms (pct_total for a band in percent,
-- hours_total in hours). What a school report's staircase block reads. Counting pupils at or
-- above a band adds up over schools, so the indicators that count pupils at a level in an area
-- sum these rows instead of decoding the histograms again.
WITH sums AS (
  SELECT school_unit_code, period, "window", municipality_code, county_code,
         sum(students) AS students,
         hist_sum(pct_total) AS pct_total, hist_sum(hours_total) AS hours_total
  FROM school_attendance
  GROUP BY school_unit_code, period, "window", municipality_code, county_code
),
bands AS (
  SELECT measure, band, "window" FROM local_steps WHERE measure <> 'none'
  UNION
  SELECT 'percent' AS measure, l.percent AS band, w."window" FROM levels l CROSS JOIN windows w
)
SELECT a.school_unit_code, a.period, a."window", a.municipality_code, a.county_code,
       b.measure, b.band, a.students,
       CASE b.measure WHEN 'percent' THEN at_or_above(a.pct_total, b.band)
                      ELSE hours_at_or_above(a.hours_total, b.band) END AS pupils
FROM sums a JOIN bands b ON b."window" = a."window"
