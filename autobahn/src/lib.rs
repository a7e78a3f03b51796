//! Autobahn testees.
