// Package fleet holds the tests of a fleet of replicas that share their
// tokens through one store.Store, through the public API of appjwt,
// consumerjws and brands: LivePerson's load with 1, 4 and 16 replicas,
// rejections, a store that fails, and what the store holds.
package fleet
