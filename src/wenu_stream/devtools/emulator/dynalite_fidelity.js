// Preloaded into dynalite (node -r ...): DynamoDB returns the item a failed condition saw when the request asks
// for it (ReturnValuesOnConditionCheckFailure=ALL_OLD); dynalite ignores that parameter. The adapters read that
// item (a retried write recognises its own earlier attempt, a fence reports the stored position), so the local
// stack answers as the service does. Nothing else of dynalite changes.
'use strict';
const path = require('path');
const root = path.dirname(process.argv[1]);
const db = require(path.join(root, 'db'));
// dynalite drops request parameters its validations do not list: list this one for the three writes.
for (const action of ['putItem', 'updateItem', 'deleteItem']) {
  require(path.join(root, 'validations', action)).types.ReturnValuesOnConditionCheckFailure = {
    type: 'String',
    enum: ['ALL_OLD', 'NONE'],
  };
}
const check = db.checkConditional;
db.checkConditional = function (data, existingItem) {
  const err = check.apply(this, arguments);
  if (err && data && data.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && existingItem
      && Object.keys(existingItem).length) {
    err.body.Item = existingItem;
  }
  return err;
};
