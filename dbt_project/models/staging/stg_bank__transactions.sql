with

source as (

    select * from {{ source('bank', 'transactions') }}

),

renamed as (

    select

        ----------  ids
        cast(transaction_id as bigint) as transaction_id,
        cast(account_id as bigint) as account_id,

        ---------- text
        lower(trim(merchant_category)) as merchant_category,
        lower(trim(channel)) as channel,

        ---------- numerics
        cast(amount as double) as amount,

        ---------- booleans
        cast(is_fraud as boolean) as is_fraud,

        ---------- timestamps
        cast(occurred_at as timestamp) as occurred_at

    from source

),

final as (

    select * from renamed

)

select * from final
