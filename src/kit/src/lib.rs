//! Building blocks both Latchkey servers (the identity server and the permission API) run on, with no
//! knowledge of either: cross-origin headers ([`cors`]), the `Authorization` header ([`auth_header`]),
//! coalescing concurrent database work ([`batch`]) and a TTL cache ([`cache`]).

pub mod auth_header;
pub mod batch;
pub mod cache;
pub mod cors;
