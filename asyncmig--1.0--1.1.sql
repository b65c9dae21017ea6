/* asyncmig--1.0--1.1.sql: from 1.0 to 1.1 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION asyncmig UPDATE TO '1.1'" to load this file. \quit

/*
 * CREATE EXTENSION asyncmig installs 1.0 and then runs this script, so a
 * fresh install and an upgraded one are the same database objects.  Same
 * rules as asyncmig--1.0.sql: every reference schema-qualified, no
 * IF NOT EXISTS, grants revoked from PUBLIC.
 */
