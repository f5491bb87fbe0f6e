// Package workload is the read/write load of the demo and chaos commands:
// readers that GetOrLoad from the simulated database and have every read
// judged by the staleness checker, and writers that write the database,
// update their cache with a broadcast, Flush, and then acknowledge.
package workload
