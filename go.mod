module github.com/productdb/stage

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	pgregory.net/rapid v1.3.0
)
