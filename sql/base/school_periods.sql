-- The school units with attendance rows in each period and window, in the municipality and
-- county the register had them then: which schools an area's report lists.
SELECT DISTINCT municipality_code, period, "window", school_unit_code, county_code
FROM school_attendance
