//! Black-box tests: the real server on a random port, a fresh data dir per test.

mod activity;
mod campaign;
mod delivery;
mod fairness;
mod helpers;
mod lifecycle;
mod openapi;
mod operating;
mod pages;
mod strategy;
