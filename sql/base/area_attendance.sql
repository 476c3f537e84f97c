-- Every attendance row once per area it belongs to: its school, municipality, county and the
-- country ('00'). Indicators group by (area_type, area_code), so one definition serves every
-- level and a higher level is always summed from minutes and histograms, never averaged.
SELECT t.area_type,
       CASE t.area_type WHEN 'school' THEN s.school_unit_code
                        WHEN 'municipality' THEN s.municipality_code
                        WHEN 'county' THEN s.county_code
                        ELSE '00' END AS area_code,
       s.*
FROM area_types t CROSS JOIN school_attendance s
