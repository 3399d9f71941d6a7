// Package subscriptions keeps Microsoft Graph change-notification
// subscriptions alive: a typed client for Graph's subscription endpoints,
// azidentity credentials per cloud, and a Manager that reconciles the
// subscriptions a configuration declares, renews them before they lapse,
// reacts to lifecycle events and shares its state through a JetStream
// key-value bucket.
package subscriptions
