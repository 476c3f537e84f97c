-- Every attendance row once per area it belongs to: its school, municipality, county and the
-- country ('00'). Indicators group by (area_type, area_code), so one definition serves every
-- level and a higher level is always summed from minutes and histograms, never averaged.
SELECT 'school' AS area_type, school_unit_code AS area_code, * FROM school_attendance
UNION ALL
SELECT 'municipality' AS area_type, municipality_code AS area_code, * FROM school_attendance
UNION ALL
SELECT 'county' AS area_type, county_code AS area_code, * FROM school_attendance
UNION ALL
SELECT 'country' AS area_type, '00' AS area_code, * FROM school_attendance
