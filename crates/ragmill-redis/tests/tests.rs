//! ragmill-redis against a real `redis-server` (one of its own per test, on a free port).

mod common;
mod contract;
mod events;
mod internals;
mod restart;
