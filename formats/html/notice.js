/*
 * The scripts below are bundled unmodified into leakdiff's HTML report:
 * d3-flame-graph 5.0.0 by Martin Spier (Apache License 2.0) and the d3
 * modules it needs by Mike Bostock (ISC License), from the npm registry at
 * the versions formats/html/package-lock.json pins in leakdiff's sources.
 */
