/* asyncmig--1.1--1.2.sql: from 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION asyncmig UPDATE TO '1.2'" to load this file. \quit

/*
 * CREATE EXTENSION asyncmig installs 1.0 and then runs the update scripts
 * (1.0 -> 1.1 -> 1.2), so a fresh install and an upgraded one are the same
 * database objects.  Same rules as asyncmig--1.0.sql: every reference
 * schema-qualified, no IF NOT EXISTS, grants revoked from PUBLIC.
 *
 * The parts below are by subject; each keeps to its own section.
 */

/* ---- batched migrations: the walk's order, bounds and key ---- */

/* ---- a flat cost as the history grows: indexes ---- */

/* ---- operating it: monitoring, the app role ---- */

/* ---- the status view ---- */
