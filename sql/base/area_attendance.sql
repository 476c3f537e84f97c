-- Every attendance row once per area it belongs to: its school, municipality, county and the
-- country ('00'). Indicators group by (area_type, area_code), so one definition serves every
-- level and a higher level is always summed from minutes and histograms, never averaged.
SELECT t.area_type,
       area_code(t.area_type, s.school_unit_code, s.municipality_code, s.county_code) AS area_code,
       s.*
FROM area_types t CROSS JOIN school_attendance s
