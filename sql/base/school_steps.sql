-- Pupils at or above every band a staircase in `local_steps` uses, per school unit, period and
-- window (the band's own window): what a school report's staircase block reads, computed from
-- the school's summed histograms (pct_total for a step in percent, hours_total in hours).
WITH sums AS (
  SELECT school_unit_code, period, "window", sum(students) AS students,
         hist_sum(pct_total) AS pct_total, hist_sum(hours_total) AS hours_total
  FROM school_attendance
  GROUP BY school_unit_code, period, "window"
),
bands AS (
  SELECT DISTINCT measure, band, "window" FROM local_steps WHERE measure <> 'none'
)
SELECT a.school_unit_code, a.period, a."window", b.measure, b.band, a.students,
       CASE b.measure WHEN 'percent' THEN at_or_above(a.pct_total, b.band)
                      ELSE hours_at_or_above(a.hours_total, b.band) END AS pupils
FROM sums a JOIN bands b ON b."window" = a."window"
