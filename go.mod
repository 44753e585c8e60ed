module github.com/hale-ehr/hale

go 1.26.8
