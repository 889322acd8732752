// Preloaded into the Node emulators (node -r loopback.js ...): their CLIs bind every interface and have no
// host option, so pin every TCP listen() to 127.0.0.1. Unix sockets (a string path) are left alone.
'use strict';
const net = require('net');
const HOST = '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    if (first.path === undefined) args[0] = Object.assign({}, first, { host: HOST });
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') args[1] = HOST;
    else args.splice(1, 0, HOST);
  }
  return listen.apply(this, args);
};
