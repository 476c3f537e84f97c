-- Förändring: terminens frånvaro jämfört med föregående termin och samma termin i fjol, i procentenheter.
-- Definition: frånvaron i terminsfönstret till och med perioden (t.ex. VT2026 t.o.m. februari)
-- jämförs med hela föregående termin (HT2025, t.o.m. december; för en HT-period: VT t.o.m.
-- juni) och med samma termin ett år tidigare till och med samma månad (VT2025 t.o.m.
-- februari). Skillnaden är i procentenheter; saknas jämförelsetermin blir den NULL. Andelen
-- elever på nivån problematisk jämförs på samma sätt.
-- Unit: percent and procentenheter. Policy: policies/shared.toml.
WITH t AS (
  SELECT r.area_type, r.area_code, r.period, r.absence_pct, l.share_pct AS problematic_share_pct
  FROM absence_rate r
  JOIN at_or_above l
    ON l.area_type = r.area_type AND l.area_code = r.area_code AND l.period = r.period
   AND l."window" = r."window" AND l.level_id = 'problematisk'
  WHERE r."window" = 'term'
),
keyed AS (
  SELECT t.*,
         CASE WHEN CAST(substr(period, 6, 2) AS INT) <= 6
              THEN CAST(CAST(substr(period, 1, 4) AS INT) - 1 AS VARCHAR) || '-12'
              ELSE substr(period, 1, 4) || '-06' END AS previous_term_period,
         CAST(CAST(substr(period, 1, 4) AS INT) - 1 AS VARCHAR) || substr(period, 5) AS last_year_period
  FROM t
)
SELECT c.area_type, c.area_code, c.period,
       c.absence_pct,
       p.absence_pct AS previous_term_absence_pct,
       c.absence_pct - p.absence_pct AS change_vs_previous_term_pp,
       y.absence_pct AS last_year_absence_pct,
       c.absence_pct - y.absence_pct AS change_vs_last_year_pp,
       c.problematic_share_pct,
       c.problematic_share_pct - p.problematic_share_pct AS problematic_change_vs_previous_term_pp,
       c.problematic_share_pct - y.problematic_share_pct AS problematic_change_vs_last_year_pp,
       c.previous_term_period, c.last_year_period,
       d.definition_id, d.definition_hash, d.data_version
FROM keyed c
LEFT JOIN t p ON p.area_type = c.area_type AND p.area_code = c.area_code AND p.period = c.previous_term_period
LEFT JOIN t y ON y.area_type = c.area_type AND y.area_code = c.area_code AND y.period = c.last_year_period
CROSS JOIN definition d
