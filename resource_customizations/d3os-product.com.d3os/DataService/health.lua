-- Argo CD health of a d3os-operator product resource (DataService): what its status says, and nothing
-- more. The operator computes the status; this only maps it (docs/integrations.md):
--   the operator has not observed this generation of the spec yet -> Progressing
--   spec.suspend is true                                           -> Suspended
--   Stalled=True or Degraded=True (a failure)                      -> Degraded, with its reason and message
--   Ready=True and not Reconciling (nothing left to roll out)      -> Healthy
--   anything else (rolling out, waiting, pruning, rolling back)    -> Progressing
-- It uses no library beyond Lua's base (Argo CD gives scripts from argocd-cm no string library).
local hs = {}
local generation = obj.metadata.generation
local status = obj.status or {}
if generation == nil or status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local conditions = {}
for _, c in ipairs(status.conditions or {}) do
  conditions[c.type] = c
end
local function true_(type_)
  local c = conditions[type_]
  return c ~= nil and c.status == "True"
end
local function says(type_)
  local c = conditions[type_]
  if c == nil then
    return ""
  end
  return tostring(c.reason) .. ": " .. tostring(c.message)
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = says("Reconciling")
elseif true_("Stalled") then
  hs.status = "Degraded"
  hs.message = says("Stalled")
elseif true_("Degraded") then
  hs.status = "Degraded"
  hs.message = says("Degraded")
elseif true_("Ready") and not true_("Reconciling") then
  hs.status = "Healthy"
  hs.message = says("Ready")
else
  hs.status = "Progressing"
  if true_("Reconciling") then
    hs.message = says("Reconciling")
  else
    hs.message = says("Ready")
  end
end
return hs
