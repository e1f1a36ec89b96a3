//! The JSON API under `/api`, one file per resource. Each file has the same sections: its
//! routes, its query and body types, its JSON shapes, its handlers.

use crate::Route;

pub(crate) mod audio;
mod audit;
pub(crate) mod callbacks;
mod calls;
mod operators;
mod queue;
pub(crate) mod recordings;

/// The routes of every resource.
pub(crate) fn routes() -> Vec<Route> {
    let mut routes = calls::routes();
    routes.extend(recordings::routes());
    routes.extend(audio::routes());
    routes.extend(queue::routes());
    routes.extend(operators::routes());
    routes.extend(audit::routes());
    routes.extend(callbacks::routes());
    routes
}
