-- The areas a county's open data lists (reports/data.toml), per period and window: its school
-- units as the register placed them then, its municipalities and the county itself, and the
-- whole lake (code 00), in every period and window the county has data, each with its name.
WITH p AS (SELECT DISTINCT county_code, period, "window" FROM school_periods),
names AS (SELECT school_unit_code, max(school_name) AS school_name FROM register GROUP BY school_unit_code),
counties AS (SELECT DISTINCT county_code, county_name FROM municipalities)
SELECT s.county_code, 'school' AS area_type, s.school_unit_code AS area_code, n.school_name AS area_name,
       s.period, s."window"
FROM school_periods s JOIN names n ON n.school_unit_code = s.school_unit_code
UNION ALL
SELECT p.county_code, 'municipality', m.municipality_code, m.municipality_name, p.period, p."window"
FROM p JOIN municipalities m ON m.county_code = p.county_code
UNION ALL
SELECT p.county_code, 'county', c.county_code AS area_code, c.county_name, p.period, p."window"
FROM p JOIN counties c ON c.county_code = p.county_code
UNION ALL
SELECT p.county_code, 'country', '00', 'Hela underlaget', p.period, p."window"
FROM p
